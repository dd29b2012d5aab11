"""Every encoding cv_bridge converts to rgb8, with cv_bridge's pixels.

References are written from cv_bridge's own code (vision_opencv cv_bridge.cpp: the table of
conversion codes, colour conversion at the source depth, then 16-bit scaled by 255/65535
with OpenCV's rounding) and from what each encoding means (a flat colour in YUV 4:2:2, a
red scene behind each Bayer pattern), so a swapped code or a wrong layout fails here.
Where the real cv_bridge is importable its output is compared too.
"""
import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from hil_serl_reward.pipeline.image_conversion import (
    ENCODINGS, ImageConverter, ImageError, compressed_size, numpy_to_rgb, stored_encoding)

# cv_bridge.cpp getConversionCodes(): (layout in the message, code to RGB)
CV_BRIDGE_TABLE = {
    'yuv422': cv2.COLOR_YUV2RGB_UYVY, 'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
    'bayer_rggb8': cv2.COLOR_BayerBG2RGB, 'bayer_bggr8': cv2.COLOR_BayerRG2RGB,
    'bayer_gbrg8': cv2.COLOR_BayerGR2RGB, 'bayer_grbg8': cv2.COLOR_BayerGB2RGB,
    'bayer_rggb16': cv2.COLOR_BayerBG2RGB, 'bayer_bggr16': cv2.COLOR_BayerRG2RGB,
    'bayer_gbrg16': cv2.COLOR_BayerGR2RGB, 'bayer_grbg16': cv2.COLOR_BayerGB2RGB,
    'mono16': cv2.COLOR_GRAY2RGB, 'bgr16': cv2.COLOR_BGR2RGB, 'rgba16': cv2.COLOR_RGBA2RGB,
    'bgra16': cv2.COLOR_BGRA2RGB, 'rgb16': None,
}
CHANNELS = {'yuv422': 2, 'yuv422_yuy2': 2, 'mono16': 1, 'rgb16': 3, 'bgr16': 3, 'rgba16': 4,
            'bgra16': 4}


def message(pixels: np.ndarray, encoding: str, padding: int = 0, big_endian: bool = False
            ) -> Image:
    height, width = pixels.shape[:2]
    data = pixels.astype('>u2' if big_endian else '<u2') if pixels.dtype == np.uint16 else pixels
    rows = np.ascontiguousarray(data).view(np.uint8).reshape(height, -1)
    rows = np.concatenate([rows, np.full((height, padding), 0xAB, np.uint8)], axis=1)
    return Image(height=height, width=width, encoding=encoding, is_bigendian=int(big_endian),
                 step=rows.shape[1], data=rows.tobytes())


def scaled_to_8_bit(frame16: np.ndarray) -> np.ndarray:
    """convertTo(CV_8U, 255/65535): float32 product, rounded to nearest (ties to even)."""
    return np.rint(frame16.astype(np.float32) * np.float32(255.0 / 65535.0)).astype(np.uint8)


def reference(pixels: np.ndarray, encoding: str) -> np.ndarray:
    code = CV_BRIDGE_TABLE[encoding]
    frame = pixels if code is None else cv2.cvtColor(pixels, code)
    return scaled_to_8_bit(frame) if frame.dtype == np.uint16 else frame


def random_pixels(encoding: str, rng: np.random.Generator, height=6, width=8) -> np.ndarray:
    channels = CHANNELS.get(encoding, 1)
    dtype, top = (np.uint16, 65536) if encoding.endswith('16') else (np.uint8, 256)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, top, shape, dtype=dtype)


@pytest.mark.parametrize('encoding', sorted(CV_BRIDGE_TABLE))
@pytest.mark.parametrize('padding', [0, 6])
def test_conversion_follows_cv_bridge(encoding, padding):
    pixels = random_pixels(encoding, np.random.default_rng(3))
    out = numpy_to_rgb(message(pixels, encoding, padding))
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, reference(pixels, encoding))


def test_yuyv_and_uyvy_aliases_are_the_yuv422_layouts():
    pixels = random_pixels('yuv422', np.random.default_rng(4))
    np.testing.assert_array_equal(numpy_to_rgb(message(pixels, 'uyvy')),
                                  numpy_to_rgb(message(pixels, 'yuv422')))
    np.testing.assert_array_equal(numpy_to_rgb(message(pixels, 'yuyv')),
                                  numpy_to_rgb(message(pixels, 'yuv422_yuy2')))


@pytest.mark.parametrize('encoding, layout', [('yuv422_yuy2', 'YUYV'), ('yuv422', 'UYVY')])
def test_a_flat_yuv_colour_decodes_to_that_colour(encoding, layout):
    """BT.601 video range: Y 81, U 90, V 240 is pure red; a swapped layout is not."""
    y, u, v = 81, 90, 240
    pair = {'YUYV': [y, u, y, v], 'UYVY': [u, y, v, y]}[layout]
    pixels = np.tile(np.array(pair, np.uint8).reshape(1, 2, 2), (4, 4, 1))
    out = numpy_to_rgb(message(pixels, encoding)).astype(int)
    assert np.abs(out - [255, 0, 0]).max() <= 3


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
@pytest.mark.parametrize('depth', [8, 16])
def test_a_red_scene_behind_each_bayer_pattern_comes_out_red(pattern, depth):
    """A sensor that sees only red has signal at its red sites alone; where those sites are
    is what the pattern's name says (first row, then second row)."""
    top = 255 if depth == 8 else 65535
    mosaic = np.zeros((8, 8), np.uint8 if depth == 8 else np.uint16)
    sites = {(0, 0): pattern[0], (0, 1): pattern[1], (1, 0): pattern[2], (1, 1): pattern[3]}
    for (row, col), colour in sites.items():
        if colour == 'r':
            mosaic[row::2, col::2] = top
    out = numpy_to_rgb(message(mosaic, f'bayer_{pattern}{depth}'))
    inner = out[2:-2, 2:-2].astype(int)
    assert (inner[..., 0] == 255).all() and (inner[..., 1:] == 0).all()


def test_16_bit_scaling_and_byte_order():
    values = np.array([[0, 128, 129, 256, 257, 32767, 65279, 65535]], np.uint16)
    expected = np.rint(values / 257.0).astype(np.uint8)
    for big_endian in (False, True):
        out = numpy_to_rgb(message(values, 'mono16', big_endian=big_endian))
        np.testing.assert_array_equal(out[..., 0], expected)
        np.testing.assert_array_equal(out[..., 2], expected)


def test_bgr16_is_converted_before_it_is_scaled():
    bgr = np.array([[[65535, 0, 257]] * 2], np.uint16)
    np.testing.assert_array_equal(numpy_to_rgb(message(bgr, 'bgr16'))[0, 0], [1, 0, 255])


@pytest.mark.parametrize('fields, reason', [
    (dict(height=2, width=3, encoding='yuv422_yuy2', step=6, data=bytes(12)), 'size'),
    (dict(height=2, width=4, encoding='mono16', step=6, data=bytes(12)), 'step'),
    (dict(height=2, width=4, encoding='32FC1', step=16, data=bytes(32)), 'encoding'),
    (dict(height=2, width=4, encoding='8UC3', step=12, data=bytes(24)), 'encoding'),
])
def test_what_cv_bridge_would_refuse_is_refused(fields, reason):
    with pytest.raises(ImageError) as err:
        numpy_to_rgb(Image(**fields))
    assert err.value.reason == reason


# ---- compressed: image_transport's `format` ---------------------------------------------

@pytest.fixture
def rgb():
    return np.random.default_rng(5).integers(0, 256, (16, 24, 3), dtype=np.uint8)


def compressed(array: np.ndarray, suffix: str, fmt: str) -> CompressedImage:
    ok, buf = cv2.imencode(suffix, array)
    assert ok
    return CompressedImage(format=fmt, data=buf.tobytes())


@pytest.mark.parametrize('fmt, stored', [
    ('png', None), ('bgr8; png compressed bgr8', 'bgr8'), ('rgb8; png compressed bgr8', 'bgr8'),
    ('rgb8; jpeg compressed bgr8', 'bgr8'), ('mono8; jpeg compressed ', None),
    ('rgb8; tiff compressed rgb8', 'rgb8'), ('16UC1; png compressed', None)])
def test_stored_encoding_is_read_from_the_format(fmt, stored):
    assert stored_encoding(fmt) == stored


@pytest.mark.parametrize('suffix', ['.png', '.tiff'])
def test_the_stored_channel_order_is_honoured(rgb, suffix):
    """image_transport writes BGR and says so; a codec holding RGB says 'compressed rgb8'."""
    as_bgr = compressed(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), suffix,
                        f'rgb8; {suffix[1:]} compressed bgr8')
    as_rgb = compressed(rgb, suffix, f'rgb8; {suffix[1:]} compressed rgb8')
    np.testing.assert_array_equal(numpy_to_rgb(as_bgr), rgb)
    np.testing.assert_array_equal(numpy_to_rgb(as_rgb), rgb)


def test_a_16_bit_png_is_scaled_like_raw_bgr16():
    bgr16 = np.random.default_rng(6).integers(0, 65536, (8, 10, 3), dtype=np.uint16)
    msg = compressed(bgr16, '.png', 'bgr16; png compressed bgr16')
    np.testing.assert_array_equal(numpy_to_rgb(msg), reference(bgr16, 'bgr16'))


def test_a_mono_jpeg_becomes_grey_rgb(rgb):
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = numpy_to_rgb(compressed(grey, '.jpg', 'mono8; jpeg compressed '))
    assert out.shape == (16, 24, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


@pytest.mark.parametrize('suffix', ['.png', '.jpg', '.tiff'])
def test_sizes_are_read_from_the_header(rgb, suffix):
    ok, buf = cv2.imencode(suffix, rgb)
    assert compressed_size(buf.tobytes()) == (24, 16)


def test_a_jpeg_size_behind_a_large_app1_segment_is_found(rgb):
    ok, buf = cv2.imencode('.jpg', rgb)
    data = buf.tobytes()
    app1 = b'\xff\xe1' + (65533).to_bytes(2, 'big') + bytes(65531)
    assert compressed_size(data[:2] + app1 + data[2:]) == (24, 16)


@pytest.mark.parametrize('suffix, reason', [('.bmp', 'format'), ('.webp', 'format')])
def test_a_codec_whose_size_cannot_be_read_first_is_refused(rgb, suffix, reason):
    ok, buf = cv2.imencode(suffix, rgb)
    with pytest.raises(ImageError) as err:
        numpy_to_rgb(CompressedImage(format=suffix[1:], data=buf.tobytes()))
    assert err.value.reason == reason


def test_an_oversized_tiff_is_refused_before_decoding(rgb):
    msg = compressed(rgb, '.tiff', 'tiff')
    with pytest.raises(ImageError) as err:
        numpy_to_rgb(msg, max_pixels=100)
    assert err.value.reason == 'too_large'


def test_the_real_cv_bridge_gives_the_same_pixels():
    """Only where ROS 2's cv_bridge is installed (an apt install, or built with
    ../shared/ros2-upstream/cv_bridge/build_cv_bridge.sh: CI's NumPy-1 leg). Row padding of
    whole pixels only: with a part of a pixel cv_bridge's Python layer shears the image, so
    the converter does not hand such images to it."""
    cv_bridge = pytest.importorskip('cv_bridge')
    real = cv_bridge.CvBridge()
    rng = np.random.default_rng(8)
    for encoding in sorted(set(CV_BRIDGE_TABLE) | {'rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'}):
        pixels = random_pixels(encoding, rng) if encoding in CV_BRIDGE_TABLE else \
            rng.integers(0, 256, (6, 8, ENCODINGS[encoding].channels), dtype=np.uint8).squeeze()
        for padding in (0, 2 * ENCODINGS[encoding].bytes_per_pixel):
            msg = message(pixels, encoding, padding=padding)
            np.testing.assert_array_equal(real.imgmsg_to_cv2(msg, 'rgb8'), numpy_to_rgb(msg),
                                          err_msg=encoding)
        sheared = message(pixels, encoding, padding=ENCODINGS[encoding].bytes_per_pixel + 1)
        np.testing.assert_array_equal(ImageConverter(real).to_rgb(sheared),
                                      numpy_to_rgb(sheared))
    bgr = cv2.cvtColor(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), cv2.COLOR_RGB2BGR)
    for suffix in ('.png', '.jpg'):                 # what image_transport sends: BGR data
        msg = compressed(bgr, suffix, f'bgr8; {suffix[1:]} compressed bgr8')
        np.testing.assert_array_equal(real.compressed_imgmsg_to_cv2(msg, 'rgb8'),
                                      numpy_to_rgb(msg), err_msg=suffix)
