"""preview_crops: look at each camera's crop before recording any data.

Takes the params file the node will run with and one frame per camera (from a rosbag2
recording, a folder of images, or live topics for a few seconds), and writes one PNG per
camera: the full frame with the crop rectangle drawn, beside the 128x128 input the model
will get (enlarged without smoothing). Prints each crop in pixels and warns about crops that
reach past the frame (Python slicing clips them silently, and so does hil-serl) or that
squeeze the picture by more than MAX_SQUEEZE into the square input.

    preview_crops --params-file rig.yaml --bag my_run/ [--output crop_preview]
    preview_crops --params-file rig.yaml --folder frames/       # frames/<key>/*.png
    preview_crops --params-file rig.yaml --topics [--seconds 3] # live, under ROS 2
"""
import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np

from hil_serl_reward.model.atomic_files import check_writable
from hil_serl_reward.pipeline.camera_set import Camera
from hil_serl_reward.pipeline.debug_view import enlarge
from hil_serl_reward.pipeline.image_conversion import ImageError
from hil_serl_reward.pipeline.preprocessing import Crop, CropError, preprocess
from hil_serl_reward.ros import config
from hil_serl_reward.ros.camera_sim import FolderSource
from hil_serl_reward.ros.cv_bridge_probe import make_converter
from hil_serl_reward.ros.params_file import read_node_parameters
from hil_serl_reward.tools.output_files import write_png

MAX_SQUEEZE = 2.0           # crop aspect (w/h) beyond 2:1 or 1:2 distorts the square input


@dataclasses.dataclass(frozen=True)
class CropBox:
    """A crop resolved against one frame size, in pixels (rows top:bottom, cols left:right)."""

    top: int
    bottom: int
    left: int
    right: int
    warnings: List[str]

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def crop_box(crop: Crop, width: int, height: int) -> CropBox:
    """Where `crop` lands on a width x height frame, and what is wrong with it there."""
    warnings = [f'{name} step {piece.step}: one {unit} in {abs(piece.step)} only'
                for name, unit, piece in (('rows', 'row', crop.rows),
                                          ('cols', 'column', crop.cols))
                if piece.step is not None and abs(piece.step) != 1]
    warnings += [f'{bound} reaches past the frame: clipped to the frame without a word, as '
                 f'in hil-serl' for bound in crop.past_frame(width, height)]
    top, bottom, left, right = crop.box_on(width, height)
    aspect = (right - left) / (bottom - top)
    if not 1 / MAX_SQUEEZE <= aspect <= MAX_SQUEEZE:
        axis = 'horizontally' if aspect > 1 else 'vertically'
        warnings.append(f'{right - left}x{bottom - top} crop (aspect {aspect:.2f}) is squeezed '
                        f'{max(aspect, 1 / aspect):.1f}x {axis} into the 128x128 input')
    return CropBox(top, bottom, left, right, warnings)


def describe(camera: Camera, width: int, height: int, box: CropBox) -> str:
    text = camera.crop.text or '(whole frame)'
    return (f"{camera.key}: crop '{text}' on {width}x{height} -> rows {box.top}:{box.bottom}, "
            f'cols {box.left}:{box.right} ({box.width}x{box.height} px, aspect '
            f'{box.width / box.height:.2f})')


def preview_image(frame: np.ndarray, camera: Camera, box: CropBox) -> np.ndarray:
    """RGB: the frame with the crop drawn, and the model input scaled to the frame's height."""
    model_input = preprocess(frame, camera.crop)
    enlarged = enlarge(model_input, max(1, frame.shape[0] // model_input.shape[0]))
    height = max(frame.shape[0], enlarged.shape[0])   # a frame may be lower than the input
    drawn = np.zeros((height, *frame.shape[1:]), np.uint8)
    drawn[:frame.shape[0]] = frame
    thickness = max(2, frame.shape[1] // 320)
    cv2.rectangle(drawn, (box.left, box.top), (box.right - 1, box.bottom - 1), (255, 0, 255),
                  thickness)
    panel = np.zeros((height, enlarged.shape[1], 3), np.uint8)
    panel[:enlarged.shape[0]] = enlarged
    return np.concatenate([drawn, np.zeros((height, 8, 3), np.uint8), panel], axis=1)


def frames_from_messages(messages: Dict[str, Any], cameras: Sequence[Camera],
                         max_pixels: int) -> Dict[str, np.ndarray]:
    converter = make_converter(max_pixels)
    missing = [c.topic for c in cameras if c.key not in messages]
    if missing:
        raise LookupError(f'no image on {missing}')
    return {c.key: converter.to_rgb(messages[c.key]) for c in cameras}


def messages_from_bag(bag: Path, cameras: Sequence[Camera]) -> Dict[str, Any]:
    from hil_serl_reward.ros.bags import read_messages
    key_of = {'/' + c.topic.lstrip('/'): c.key for c in cameras}
    first: Dict[str, Any] = {}
    for topic, _, msg in read_messages(bag, list(key_of)):
        first.setdefault(key_of[topic], msg)
        if len(first) == len(cameras):
            break
    return first


def messages_from_topics(cameras: Sequence[Camera], seconds: float,
                         reliability: str) -> Dict[str, Any]:
    """The newest message per camera after listening for `seconds`; LookupError saying,
    for each camera that sent nothing, what the ROS graph knows of its topic (the wrong
    topic name this tool exists to catch before recording, among others).

    Its own rclpy context, so that a process where rclpy already runs (a notebook, a test,
    a tool of yours) can call it too."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from hil_serl_reward.ros.camera_graph import said_once, why_silent
    from hil_serl_reward.ros.camera_input import camera_qos, message_type
    context = rclpy.Context()
    rclpy.init(context=context)
    latest: Dict[str, Any] = {}
    try:
        node = rclpy.create_node('preview_crops', context=context)
        subscriptions = [node.create_subscription(
            message_type(camera), camera.topic,
            lambda msg, key=camera.key: latest.__setitem__(key, msg), camera_qos(reliability))
            for camera in cameras]
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
        topics = [s.topic_name for s in subscriptions]
        silent = [(c.key, why_silent(node, c.key, s, False, topics))
                  for c, s in zip(cameras, subscriptions) if c.key not in latest]
        executor.shutdown()
        node.destroy_node()
    finally:
        context.try_shutdown()
    if silent:
        reasons, hint = said_once([reason for _, reason in silent],
                                  [message_type(camera) for camera in cameras])
        raise LookupError(f'no image in {seconds:g} s from ' + '; '.join(
            f'{key}: {reason}' for (key, _), reason in zip(silent, reasons)) + hint)
    return latest


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--params-file', type=Path, required=True,
                        help="the node's params YAML (image_keys, cameras.<key>.topic/crop)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--bag', type=Path, help='rosbag2 recording of the camera topics')
    source.add_argument('--folder', type=Path, help='folder with <key>/ image subfolders')
    source.add_argument('--topics', action='store_true', help='live camera topics')
    parser.add_argument('--seconds', type=float, default=3.0, help='--topics: listen this long')
    parser.add_argument('--output', type=Path, default=Path('crop_preview'))
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        values = config.with_defaults(read_node_parameters(args.params_file))
        problems = config.check(values)
        if problems:
            raise ValueError('; '.join(problems))
        cameras = config.cameras_from(values)
        if args.folder:                     # the first image per camera, as camera_sim reads
            frames = FolderSource(args.folder, [c.key for c in cameras],
                                  int(values['max_image_pixels'])).frames(0)
        else:
            messages = (messages_from_bag(args.bag, cameras) if args.bag else
                        messages_from_topics(cameras, args.seconds, values['qos_reliability']))
            frames = frames_from_messages(messages, cameras, int(values['max_image_pixels']))
        check_writable(args.output)
    except (OSError, ValueError, LookupError, ImageError) as exc:
        print(f'preview_crops: {exc}', file=sys.stderr)
        return 2
    status = 0
    for camera in cameras:
        frame = frames[camera.key]
        height, width = frame.shape[:2]
        try:
            box = crop_box(camera.crop, width, height)
        except CropError as exc:
            print(f'preview_crops: {camera.key}: {exc}', file=sys.stderr)
            status = 1
            continue
        print(describe(camera, width, height, box))
        if camera.frame_size not in (None, (width, height)):
            print(f'  warning: cameras.{camera.key}.frame_size is {camera.frame_size[0]}x'
                  f'{camera.frame_size[1]}: the node refuses these {width}x{height} frames')
        for warning in box.warnings:
            print(f'  warning: {warning}')
        path = args.output / f'{camera.key}.png'
        try:
            write_png(path, preview_image(frame, camera, box))
        except OSError as exc:
            print(f'preview_crops: {exc}', file=sys.stderr)
            return 1
        print(f'  wrote {path}')
    return status


if __name__ == '__main__':
    sys.exit(main())
