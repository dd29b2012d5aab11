"""sensor_msgs Image / CompressedImage -> full-resolution RGB uint8 frame.

`cv_bridge` is used where it is installed (every ROS 2 install has it); elsewhere our numpy
conversion gives the identical array for the 8-bit encodings cameras publish. Both paths
first run the same cheap checks on the message metadata, so a malformed image is rejected
in the subscription callback before it can enter a synchronised set.
"""
import dataclasses
from typing import Any, Dict, Optional, Tuple

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


# 4096 x 4096: above every camera a classifier is fed from (4K UHD is 8.3 Mpx), far below
# what would stall the node (a 20000x20000 PNG decoded to 1.2 GB).
DEFAULT_MAX_PIXELS = 4096 * 4096
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def compressed_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from a PNG or JPEG header, without decoding; None for other data."""
    data = bytes(data[:65536])
    if data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR' and len(data) >= 24:
        return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    if data[:2] != b'\xff\xd8':
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:                       # fill byte
            at += 1
            continue
        if marker in _JPEG_SOF:
            return (int.from_bytes(data[at + 7:at + 9], 'big'),
                    int.from_bytes(data[at + 5:at + 7], 'big'))
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            at += 2                              # markers without a length
            continue
        at += 2 + int.from_bytes(data[at + 2:at + 4], 'big')
    return None


def _check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise ImageError('too_large', f'{what} {width}x{height} = {width * height} pixels, '
                         f'more than max_image_pixels {max_pixels}')


def is_compressed(msg: Any) -> bool:
    return hasattr(msg, 'format') and not hasattr(msg, 'encoding')


def validate(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Reject what no conversion can use, from metadata only (cheap enough for a callback).
    A compressed image's size is read from its PNG or JPEG header: an oversized one is
    refused before anything is decoded."""
    if is_compressed(msg):
        if not msg.data:
            raise ImageError('empty', 'compressed image with no data')
        size = compressed_size(msg.data)
        if size is not None:
            _check_pixels(*size, max_pixels, f"'{msg.format}' header says")
        return
    if msg.encoding not in ENCODINGS:
        raise ImageError('encoding', f"unsupported encoding '{msg.encoding}': the classifier "
                         f"needs 8-bit colour or mono ({', '.join(ENCODINGS)})")
    channels = ENCODINGS[msg.encoding][0]
    if msg.width == 0 or msg.height == 0:
        raise ImageError('size', f'empty image {msg.width}x{msg.height}')
    _check_pixels(msg.width, msg.height, max_pixels, 'image')
    if msg.step < msg.width * channels:
        raise ImageError('step', f'step {msg.step} < width {msg.width} x {channels} channels')
    if len(msg.data) != msg.step * msg.height:
        raise ImageError('size', f'{len(msg.data)} bytes of data, but step {msg.step} x height '
                         f'{msg.height} = {msg.step * msg.height}')


def numpy_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Our conversion: honours row padding (`step`); 8-bit data has no byte order."""
    validate(msg, max_pixels)
    if is_compressed(msg):
        try:
            frame = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:                 # e.g. a header OpenCV refuses to allocate for
            raise ImageError('decode', f"cannot decode compressed image (format "
                             f"'{msg.format}'): {str(exc).strip().splitlines()[-1]}") from exc
        if frame is None:
            raise ImageError('decode', f"cannot decode compressed image (format '{msg.format}')")
        _check_pixels(frame.shape[1], frame.shape[0], max_pixels, 'decoded image')
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    channels, conversion = ENCODINGS[msg.encoding]
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    frame = rows[:, :msg.width * channels].reshape(msg.height, msg.width, channels)
    if conversion is None:
        return np.ascontiguousarray(frame)
    return cv2.cvtColor(frame, conversion)


class ImageConverter:
    """The one interface the pipeline uses; `backend` says which implementation runs."""

    def __init__(self, bridge: Optional[Any] = None, max_pixels: int = DEFAULT_MAX_PIXELS
                 ) -> None:
        self._bridge = bridge
        self.max_pixels = max_pixels
        self.backend = 'cv_bridge' if bridge is not None else 'numpy'

    def to_rgb(self, msg: Any) -> np.ndarray:
        if self._bridge is None:
            return numpy_to_rgb(msg, self.max_pixels)
        validate(msg, self.max_pixels)
        try:
            if is_compressed(msg):
                return self._bridge.compressed_imgmsg_to_cv2(msg, desired_encoding='rgb8')
            return self._bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8')
        except Exception as exc:  # cv_bridge raises CvBridgeError or cv2.error
            raise ImageError('decode', f'cv_bridge could not convert: {exc}') from exc


def make_converter(max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageConverter:
    """cv_bridge where installed, our numpy conversion elsewhere."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return ImageConverter(max_pixels=max_pixels)
    return ImageConverter(CvBridge(), max_pixels)


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
