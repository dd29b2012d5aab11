"""sensor_msgs Image / CompressedImage -> full-resolution RGB uint8 frame, as cv_bridge does.

Every encoding cv_bridge converts to `rgb8` is taken (vision_opencv cv_bridge.cpp,
`getConversionCodes` and `toCvCopyImpl`): 8- and 16-bit mono and colour, the two YUV 4:2:2
layouts USB cameras send (`yuv422` = UYVY, `yuv422_yuy2` = YUYV, and their newer names `uyvy`
and `yuyv`) and the four Bayer patterns. As in cv_bridge the colour conversion runs at the
source depth and 16-bit data is then scaled by 255/65535; a big-endian image is byte-swapped.

`cv_bridge` is used for raw images where it is installed and works (ros/cv_bridge_probe.py
decides); elsewhere our numpy/OpenCV conversion gives the same pixels. Compressed images
are always decoded here: cv_bridge ignores the `format` field, which says in
image_transport's form (`rgb8; jpeg compressed bgr8`) which channel order the codec holds.
Both paths first run the same cheap checks on the message metadata (for a compressed image:
its header), so a malformed or oversized image is rejected in the subscription callback
before it can enter a synchronised set.
"""
import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Encoding:
    """How one sensor_msgs encoding is laid out and turned into RGB (cv_bridge's codes)."""

    channels: int               # channels of the message data (YUV 4:2:2: 2 bytes a pixel)
    depth: int                  # bits per channel: 8 or 16
    to_rgb: Optional[int]       # cv2 colour conversion at the source depth; None: already RGB

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.depth // 8


def _family(depths: Tuple[int, ...], channels: int, to_rgb: Optional[int]) -> Tuple[Encoding, ...]:
    return tuple(Encoding(channels, depth, to_rgb) for depth in depths)


_RGB8, _RGB16 = _family((8, 16), 3, None)
_BGR8, _BGR16 = _family((8, 16), 3, cv2.COLOR_BGR2RGB)
_RGBA8, _RGBA16 = _family((8, 16), 4, cv2.COLOR_RGBA2RGB)
_BGRA8, _BGRA16 = _family((8, 16), 4, cv2.COLOR_BGRA2RGB)
_MONO8, _MONO16 = _family((8, 16), 1, cv2.COLOR_GRAY2RGB)
# cv_bridge's Bayer codes: OpenCV names a pattern by its second row's first two pixels
_RGGB8, _RGGB16 = _family((8, 16), 1, cv2.COLOR_BayerBG2RGB)
_BGGR8, _BGGR16 = _family((8, 16), 1, cv2.COLOR_BayerRG2RGB)
_GBRG8, _GBRG16 = _family((8, 16), 1, cv2.COLOR_BayerGR2RGB)
_GRBG8, _GRBG16 = _family((8, 16), 1, cv2.COLOR_BayerGB2RGB)
_UYVY = Encoding(2, 8, cv2.COLOR_YUV2RGB_UYVY)
_YUYV = Encoding(2, 8, cv2.COLOR_YUV2RGB_YUY2)

ENCODINGS: Dict[str, Encoding] = {
    'rgb8': _RGB8, 'bgr8': _BGR8, 'rgba8': _RGBA8, 'bgra8': _BGRA8, 'mono8': _MONO8,
    'rgb16': _RGB16, 'bgr16': _BGR16, 'rgba16': _RGBA16, 'bgra16': _BGRA16, 'mono16': _MONO16,
    'yuv422': _UYVY, 'uyvy': _UYVY, 'yuv422_yuy2': _YUYV, 'yuyv': _YUYV,
    'bayer_rggb8': _RGGB8, 'bayer_bggr8': _BGGR8, 'bayer_gbrg8': _GBRG8, 'bayer_grbg8': _GRBG8,
    'bayer_rggb16': _RGGB16, 'bayer_bggr16': _BGGR16, 'bayer_gbrg16': _GBRG16,
    'bayer_grbg16': _GRBG16,
}
# Encodings cv_bridge's own table lacks (newer sensor_msgs aliases): always converted here.
NOT_IN_CV_BRIDGE = frozenset({'uyvy', 'yuyv'})


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
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257


def _jpeg_size(data: memoryview) -> Optional[Tuple[int, int]]:
    """Walks the segments up to the first frame header (SOF), however many APPn precede it."""
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
        if marker == 0xDA:                       # scan data before any frame header
            return None
        at += 2 + int.from_bytes(data[at + 2:at + 4], 'big')
    return None


def _tiff_size(data: memoryview) -> Optional[Tuple[int, int]]:
    """ImageWidth and ImageLength of the first IFD (the page OpenCV decodes)."""
    order = 'little' if data[:2] == b'II' else 'big'
    number = lambda at, size: int.from_bytes(data[at:at + size], order)  # noqa: E731
    ifd = number(4, 4)
    if ifd + 2 > len(data):
        return None
    size = {}
    for entry in range(number(ifd, 2)):
        at = ifd + 2 + 12 * entry
        if at + 12 > len(data):
            return None
        tag, kind = number(at, 2), number(at + 2, 2)
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT):
            size[tag] = number(at + 8, 2) if kind == 3 else number(at + 8, 4)
    if len(size) != 2:
        return None
    return size[_TIFF_WIDTH], size[_TIFF_HEIGHT]


def compressed_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from a PNG, JPEG or TIFF header, without decoding or copying; None for
    anything else (another codec, or a header that does not say)."""
    data = memoryview(data).cast('B')
    if data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR' and len(data) >= 24:
        return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    if data[:2] == b'\xff\xd8':
        return _jpeg_size(data)
    if data[:4] in (b'II*\x00', b'MM\x00*'):
        return _tiff_size(data)
    return None


def _check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise ImageError('too_large', f'{what} {width}x{height} = {width * height} pixels, '
                         f'more than max_image_pixels {max_pixels}')


def is_compressed(msg: Any) -> bool:
    return hasattr(msg, 'format') and not hasattr(msg, 'encoding')


def stored_encoding(compressed_format: str) -> Optional[str]:
    """The encoding the codec holds, from image_transport's `format`: 'rgb8; jpeg compressed
    bgr8' -> 'bgr8'; None when the format does not say ('jpeg', 'png', 'mono8; jpeg
    compressed ')."""
    _, _, after = compressed_format.partition(' compressed ')
    name = after.strip().lower()
    return name if name in ENCODINGS else None


def check_compressed(data: Any, what: str, max_pixels: int) -> Tuple[int, int]:
    """An encoded image (a CompressedImage's data, an image file) must say its size in its
    header, and that size must be within `max_pixels`: its pixels are never decoded first.
    Its (width, height)."""
    if not len(data):
        raise ImageError('empty', f'{what}: no data')
    size = compressed_size(data)
    if size is None and bytes(data[:2]) in (b'\xff\xd8', b'\x89P', b'II', b'MM'):
        raise ImageError('header', f'{what}: a JPEG, PNG or TIFF whose header gives no image '
                         'size (truncated or corrupt)')
    if size is None:
        raise ImageError('format', f'{what}: not JPEG, PNG or TIFF, whose size can be read '
                         'from the header before decoding')
    _check_pixels(*size, max_pixels, f'{what}: header says')
    return size


def validate(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[int, int]:
    """Reject what no conversion can use, from metadata only (cheap enough for a callback);
    a compressed image by its header (check_compressed). The image's (width, height)."""
    if is_compressed(msg):
        return check_compressed(msg.data, f"compressed image (format '{msg.format}')",
                                max_pixels)
    encoding = ENCODINGS.get(msg.encoding)
    if encoding is None:
        raise ImageError('encoding', f"unsupported encoding '{msg.encoding}': the classifier "
                         f"takes what cv_bridge converts to rgb8 ({', '.join(ENCODINGS)})")
    if msg.width == 0 or msg.height == 0:
        raise ImageError('size', f'empty image {msg.width}x{msg.height}')
    _check_pixels(msg.width, msg.height, max_pixels, 'image')
    if encoding.channels == 2 and msg.width % 2:
        raise ImageError('size', f'{msg.encoding} needs an even width (two pixels share their '
                         f'colour), got {msg.width}')
    row = msg.width * encoding.bytes_per_pixel
    if msg.step < row:
        raise ImageError('step', f'step {msg.step} < width {msg.width} x '
                         f'{encoding.bytes_per_pixel} bytes per pixel')
    if len(msg.data) != msg.step * msg.height:
        raise ImageError('size', f'{len(msg.data)} bytes of data, but step {msg.step} x height '
                         f'{msg.height} = {msg.step * msg.height}')
    return msg.width, msg.height


def array_to_rgb(pixels: np.ndarray, encoding: Encoding) -> np.ndarray:
    """(H, W[, C]) pixels in `encoding` -> RGB uint8, in cv_bridge's order: the colour
    conversion at the source depth, then 16-bit scaled by 255/65535 (convertTo's rounding)."""
    frame = pixels if encoding.to_rgb is None else cv2.cvtColor(pixels, encoding.to_rgb)
    if encoding.depth == 16:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / 65535.0)
    return np.ascontiguousarray(frame)


def _raw_pixels(msg: Any, encoding: Encoding) -> np.ndarray:
    """The message's pixels without row padding (`step`), native byte order."""
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    packed = rows[:, :msg.width * encoding.bytes_per_pixel]
    if encoding.depth == 16:
        packed = packed.view('>u2' if msg.is_bigendian else '<u2').astype(np.uint16)
    if encoding.channels == 1:
        return packed.reshape(msg.height, msg.width)
    return packed.reshape(msg.height, msg.width, encoding.channels)


def decode_to_rgb(data: Any, what: str, stored_format: str = '',
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decodes checked bytes as the codec stored them; the channel order is `stored_format`'s
    stored encoding ('... compressed rgb8' keeps RGB), else BGR, what image_transport and
    OpenCV write."""
    try:
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:                     # e.g. a header OpenCV refuses to allocate for
        raise ImageError('decode', f'cannot decode {what}: '
                         f'{str(exc).strip().splitlines()[-1]}') from exc
    if frame is None or frame.dtype not in (np.uint8, np.uint16) or frame.ndim not in (2, 3):
        raise ImageError('decode', f'cannot decode {what}')
    _check_pixels(frame.shape[1], frame.shape[0], max_pixels, f'{what} decoded to')
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    depth = 16 if frame.dtype == np.uint16 else 8
    stored = ENCODINGS.get(stored_encoding(stored_format) or '')
    if stored is None or (stored.channels, stored.depth) != (channels, depth):
        stored = {1: _MONO8, 3: _BGR8, 4: _BGRA8}.get(channels) if depth == 8 else \
            {1: _MONO16, 3: _BGR16, 4: _BGRA16}.get(channels)
    if stored is None:
        raise ImageError('decode', f'{what} decodes to {channels} channels')
    return array_to_rgb(frame, stored)


def image_file_to_rgb(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file as RGB uint8, checked like a compressed image: refused from its header
    when larger than `max_pixels` (a decompression bomb among a folder of frames) or in a
    codec whose header cannot say."""
    data = Path(path).read_bytes()
    check_compressed(data, f"'{path}'", max_pixels)
    return decode_to_rgb(data, f"'{path}'", max_pixels=max_pixels)


def numpy_to_rgb(msg: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Our conversion (cv_bridge's pixels): row padding, byte order, depth and colour."""
    validate(msg, max_pixels)
    if is_compressed(msg):
        return decode_to_rgb(msg.data, f"compressed image (format '{msg.format}')", msg.format,
                             max_pixels)
    encoding = ENCODINGS[msg.encoding]
    return array_to_rgb(_raw_pixels(msg, encoding), encoding)


def whole_pixel_rows(msg: Any) -> bool:
    """cv_bridge's Python layer reads a row as `step // bytes per pixel` whole pixels, so a
    `step` padded by a part of a pixel shears its image (measured with the real cv_bridge);
    such images are converted here, honouring `step` as cv_bridge's C++ side does."""
    encoding = ENCODINGS.get(msg.encoding)
    return encoding is None or msg.step % encoding.bytes_per_pixel == 0


class ImageConverter:
    """The one interface the pipeline uses; `backend` says which implementation converts raw
    images (compressed ones are always decoded here, honouring `format`)."""

    def __init__(self, bridge: Optional[Any] = None, max_pixels: int = DEFAULT_MAX_PIXELS
                 ) -> None:
        self._bridge = bridge
        self.max_pixels = max_pixels
        self.backend = 'cv_bridge' if bridge is not None else 'numpy'

    def to_rgb(self, msg: Any) -> np.ndarray:
        if self._bridge is None or is_compressed(msg) or msg.encoding in NOT_IN_CV_BRIDGE \
                or not whole_pixel_rows(msg):
            return numpy_to_rgb(msg, self.max_pixels)
        validate(msg, self.max_pixels)
        try:
            return self._bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8')
        except Exception as exc:  # cv_bridge raises CvBridgeError or cv2.error
            raise ImageError('decode', f'cv_bridge could not convert: {exc}') from exc


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
