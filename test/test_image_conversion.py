"""Our numpy conversion: every 8-bit encoding, step padding, compressed images, bad input."""
import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from hil_serl_reward.pipeline.image_conversion import (
    ImageError, numpy_to_rgb, rgb_to_msg)


@pytest.fixture
def rgb():
    return np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def image(**fields):
    msg = Image()
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
@pytest.mark.parametrize('padding', [0, 7])
def test_colour_encodings_round_trip(rgb, encoding, padding):
    msg = image(**rgb_to_msg(rgb, encoding, step_padding=padding))
    np.testing.assert_array_equal(numpy_to_rgb(msg), rgb)


def test_bgr8_is_channel_reversed(rgb):
    bgr = rgb[..., ::-1]
    msg = image(height=48, width=64, encoding='bgr8', step=64 * 3,
                data=np.ascontiguousarray(bgr).tobytes())
    np.testing.assert_array_equal(numpy_to_rgb(msg), rgb)


def test_mono8_replicates_grey(rgb):
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    msg = image(**rgb_to_msg(rgb, 'mono8', step_padding=3))
    out = numpy_to_rgb(msg)
    assert out.shape == (48, 64, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_big_endian_flag_does_not_change_8_bit_data(rgb):
    msg = image(**rgb_to_msg(rgb, 'rgb8'))
    msg.is_bigendian = 1
    np.testing.assert_array_equal(numpy_to_rgb(msg), rgb)


@pytest.mark.parametrize('fmt', ['.png', '.jpg'])
def test_compressed_images_decode_like_opencv(rgb, fmt):
    ok, buf = cv2.imencode(fmt, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    msg = CompressedImage(format=fmt[1:], data=buf.tobytes())
    expected = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(numpy_to_rgb(msg), expected)
    if fmt == '.png':
        np.testing.assert_array_equal(numpy_to_rgb(msg), rgb)


@pytest.mark.parametrize('fields, reason', [
    (dict(height=4, width=4, encoding='16UC1', step=8, data=bytes(32)), 'encoding'),
    (dict(height=4, width=4, encoding='rgb8', step=12, data=bytes(40)), 'size'),
    (dict(height=4, width=4, encoding='rgb8', step=12, data=bytes(60)), 'size'),
    (dict(height=4, width=4, encoding='rgb8', step=8, data=bytes(32)), 'step'),
    (dict(height=0, width=4, encoding='rgb8', step=12, data=b''), 'size'),
])
def test_bad_images_are_rejected_with_a_reason(fields, reason):
    with pytest.raises(ImageError) as err:
        numpy_to_rgb(image(**fields))
    assert err.value.reason == reason


def test_corrupt_compressed_image(rgb):
    with pytest.raises(ImageError) as err:
        numpy_to_rgb(CompressedImage(format='jpeg', data=b'\xff\xd8 not a jpeg'))
    assert err.value.reason == 'header'
    ok, buf = cv2.imencode('.jpg', rgb)
    with pytest.raises(ImageError) as err:       # a sound header, the scan cut short
        numpy_to_rgb(CompressedImage(format='jpeg', data=buf.tobytes()[:300]))
    assert err.value.reason == 'decode'
