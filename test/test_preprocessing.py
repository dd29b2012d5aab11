"""Crop + resize equal direct OpenCV on the same frame, with hil-serl's slicing semantics."""
import cv2
import numpy as np
import pytest

from hil_serl_reward.pipeline.preprocessing import (
    CropError, parse_crop, parse_frame_size, preprocess)


@pytest.fixture
def frame():
    return np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)


@pytest.mark.parametrize('text, rows, cols', [
    ('150:450, 350:1100', slice(150, 450), slice(350, 1100)),       # ram_insertion wrist_1
    ('50:-200, 200:-200', slice(50, -200), slice(200, -200)),       # usb wrist_1
    (':-200, 200:-200', slice(None, -200), slice(200, -200)),       # usb wrist_2
    ('270:398, 500:628', slice(270, 398), slice(500, 628)),         # side_classifier
    (':, 250:', slice(None), slice(250, None)),                     # handover left wrist
    ('::-1, ::-1', slice(None, None, -1), slice(None, None, -1)),   # flipped camera
    ('200:, :, :', slice(200, None), slice(None)),                  # egg_flip, three slices
    ('200:', slice(200, None), slice(None)),                        # rows only
    ('100:-100, :, 0:3', slice(100, -100), slice(None)),
    ('', slice(None), slice(None)),
])
def test_crop_matches_numpy_slicing_and_cv2_resize(frame, text, rows, cols):
    expected = cv2.resize(np.ascontiguousarray(frame[rows, cols]), (128, 128))
    out = preprocess(frame, parse_crop(text))
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_bgr_then_rgb_equals_rgb_then_crop(frame):
    """hil-serl crops and resizes BGR, then flips; converting first gives the same pixels."""
    bgr = frame
    upstream = cv2.resize(bgr[150:450, 350:1100], (128, 128))[..., ::-1]
    ours = preprocess(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), parse_crop('150:450, 350:1100'))
    np.testing.assert_array_equal(ours, upstream)


def test_interpolation_is_inter_linear_not_area(frame):
    out = preprocess(frame, parse_crop(''))
    area = cv2.resize(frame, (128, 128), interpolation=cv2.INTER_AREA)
    assert not np.array_equal(out, area)


@pytest.mark.parametrize('text, message', [
    ('1:2, 1:2, 1:2, 1:2', "expected 'rows', 'rows, cols' or 'rows, cols, channels'"),
    ('1:100, :, ::-1', "channel slice '::-1' does not keep all three colour channels"),
    ('1:100, :, 0:1', "channel slice '0:1' does not keep"),
    ('a:b, 1:2', 'is not a slice'),
    ('5, 1:2', 'single row'),
    ('1:2:0, 1:2', 'step cannot be zero'),
])
def test_bad_crops_are_explained(text, message):
    with pytest.raises(CropError, match=message):
        parse_crop(text)


def test_crop_outside_the_frame_is_an_error(frame):
    with pytest.raises(CropError, match='leaves nothing of a 1280x720 frame'):
        preprocess(frame, parse_crop('800:900, 0:100'))


@pytest.mark.parametrize('text, width, height, past, box', [
    ('150:450, 350:1100', 1280, 720, [], (150, 450, 350, 1100)),        # where it was written
    ('150:450, 350:1100', 640, 480, ['cols bound 1100 (640 cols)'], (150, 450, 350, 640)),
    ('50:-200, 200:-200', 640, 480, [], (50, 280, 200, 440)),             # relative: no warning
    ('-800:, :', 1280, 720, ['rows bound -800 (720 rows)'], (0, 720, 0, 1280)),
    ('::-1, :-901:-1', 1280, 720, [], (0, 720, 380, 1280)),    # hil-serl's flipped wrist [:, :900]
    ('', 64, 48, [], (0, 48, 0, 64)),
])
def test_what_a_crop_takes_of_a_frame_of_each_size(frame, text, width, height, past, box):
    crop = parse_crop(text)
    assert crop.past_frame(width, height) == past
    assert crop.box_on(width, height) == box
    pixels = crop.apply(np.zeros((height, width, 1), np.uint8))
    assert pixels.shape[:2] == (box[1] - box[0], box[3] - box[2])
    with pytest.raises(CropError, match='leaves nothing of a 100x100 frame'):
        parse_crop('150:450, 350:1100').box_on(100, 100)


@pytest.mark.parametrize('text, size', [('1280x720', (1280, 720)), (' 640 X 480 ', (640, 480)),
                                        ('', None), (None, None)])
def test_frame_sizes_as_written(text, size):
    assert parse_frame_size(text) == size


@pytest.mark.parametrize('text', [1280, '0x720', '1280x', '1280*720', '1280x720x15'])
def test_frame_sizes_that_are_not_are_explained(text):
    with pytest.raises(CropError, match='expected WIDTHxHEIGHT such as'):
        parse_frame_size(text)
