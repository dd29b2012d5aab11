"""sensor_msgs Image / CompressedImage -> full-resolution RGB uint8 frame.

`cv_bridge` is used where it is installed (every ROS 2 install has it); elsewhere our numpy
conversion gives the identical array for the 8-bit encodings cameras publish. Both paths
first run the same cheap checks on the message metadata, so a malformed image is rejected
in the subscription callback before it can enter a synchronised set.
"""
import dataclasses
from typing import Any, Dict, Optional

import cv2
import numpy as np

# encoding -> (channels, cv2 conversion to RGB or None when already RGB)
ENCODINGS: Dict[str, tuple] = {
    'rgb8': (3, None),
    'bgr8': (3, cv2.COLOR_BGR2RGB),
    'rgba8': (4, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, cv2.COLOR_BGRA2RGB),
    'mono8': (1, cv2.COLOR_GRAY2RGB),
}


class ImageError(ValueError):
    """An image that cannot be used; `reason` is a short key counted in diagnostics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What the log line and diagnostics say about an image."""

    encoding: str
    width: int
    height: int
    size: int

    def __str__(self) -> str:
        return f'encoding={self.encoding or "?"} {self.width}x{self.height} ({self.size} bytes)'


def describe(msg: Any) -> ImageInfo:
    return ImageInfo(getattr(msg, 'encoding', getattr(msg, 'format', '')),
                     int(getattr(msg, 'width', 0)), int(getattr(msg, 'height', 0)),
                     len(msg.data))


def is_compressed(msg: Any) -> bool:
    return hasattr(msg, 'format') and not hasattr(msg, 'encoding')


def validate(msg: Any) -> None:
    """Reject what no conversion can use, from metadata only (cheap enough for a callback)."""
    if is_compressed(msg):
        if not msg.data:
            raise ImageError('empty', 'compressed image with no data')
        return
    if msg.encoding not in ENCODINGS:
        raise ImageError('encoding', f"unsupported encoding '{msg.encoding}': the classifier "
                         f"needs 8-bit colour or mono ({', '.join(ENCODINGS)})")
    channels = ENCODINGS[msg.encoding][0]
    if msg.width == 0 or msg.height == 0:
        raise ImageError('size', f'empty image {msg.width}x{msg.height}')
    if msg.step < msg.width * channels:
        raise ImageError('step', f'step {msg.step} < width {msg.width} x {channels} channels')
    if len(msg.data) != msg.step * msg.height:
        raise ImageError('size', f'{len(msg.data)} bytes of data, but step {msg.step} x height '
                         f'{msg.height} = {msg.step * msg.height}')


def numpy_to_rgb(msg: Any) -> np.ndarray:
    """Our conversion: honours row padding (`step`); 8-bit data has no byte order."""
    validate(msg)
    if is_compressed(msg):
        frame = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise ImageError('decode', f"cannot decode compressed image (format '{msg.format}')")
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    channels, conversion = ENCODINGS[msg.encoding]
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    frame = rows[:, :msg.width * channels].reshape(msg.height, msg.width, channels)
    if conversion is None:
        return np.ascontiguousarray(frame)
    return cv2.cvtColor(frame, conversion)


class ImageConverter:
    """The one interface the pipeline uses; `backend` says which implementation runs."""

    def __init__(self, bridge: Optional[Any] = None) -> None:
        self._bridge = bridge
        self.backend = 'cv_bridge' if bridge is not None else 'numpy'

    def to_rgb(self, msg: Any) -> np.ndarray:
        if self._bridge is None:
            return numpy_to_rgb(msg)
        validate(msg)
        try:
            if is_compressed(msg):
                return self._bridge.compressed_imgmsg_to_cv2(msg, desired_encoding='rgb8')
            return self._bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8')
        except Exception as exc:  # cv_bridge raises CvBridgeError or cv2.error
            raise ImageError('decode', f'cv_bridge could not convert: {exc}') from exc


def make_converter() -> ImageConverter:
    """cv_bridge where installed, our numpy conversion elsewhere."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return ImageConverter()
    return ImageConverter(CvBridge())


def rgb_to_msg(frame: np.ndarray, encoding: str = 'rgb8', step_padding: int = 0) -> Dict[str, Any]:
    """Fields of a sensor_msgs/Image holding `frame` (RGB uint8) in `encoding`.

    Used by the camera simulator and tests; the inverse of numpy_to_rgb.
    """
    inverse = {'rgb8': None, 'bgr8': cv2.COLOR_RGB2BGR, 'rgba8': cv2.COLOR_RGB2RGBA,
               'bgra8': cv2.COLOR_RGB2BGRA, 'mono8': cv2.COLOR_RGB2GRAY}
    if encoding not in inverse:
        raise ValueError(f"cannot encode to '{encoding}'")
    data = frame if inverse[encoding] is None else cv2.cvtColor(frame, inverse[encoding])
    height, width = data.shape[:2]
    row = data.reshape(height, -1)
    if step_padding:
        row = np.concatenate([row, np.zeros((height, step_padding), np.uint8)], axis=1)
    return {'height': height, 'width': width, 'encoding': encoding, 'is_bigendian': 0,
            'step': row.shape[1], 'data': row.tobytes()}
