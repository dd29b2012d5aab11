"""The success debounce (min_consecutive) and the crop-against-frame check, without ROS."""
from hil_serl_reward.pipeline.camera_set import (
    Camera, ConsecutiveSuccess, FrameSizes, RewardResult)
from hil_serl_reward.pipeline.preprocessing import parse_crop


def decisions(consecutive, above):
    return [consecutive(RewardResult(i, 0.0, 0.9 if a else 0.1, a)).success
            for i, a in enumerate(above)]


def test_one_is_each_set_on_its_own():
    above = [True, False, True, True, False]
    assert decisions(ConsecutiveSuccess(1), above) == above


def test_success_needs_a_run_and_a_miss_restarts_it():
    consecutive = ConsecutiveSuccess(3)
    assert decisions(consecutive, [True, True, True, True, False, True, True, True]) == [
        False, False, True, True, False, False, False, True]
    assert consecutive.streak == 3


def test_raising_the_count_mid_run_applies_to_the_run_so_far():
    consecutive = ConsecutiveSuccess(2)
    assert decisions(consecutive, [True, True]) == [False, True]
    consecutive.needed = 4
    assert decisions(consecutive, [True, True]) == [False, True]


def test_frame_sizes_say_which_crop_reaches_past_its_frames_while_it_does():
    sizes = FrameSizes([Camera('wrist_1', 'w', parse_crop('150:450, 350:1100')),
                        Camera('front', 'f', parse_crop('50:-200, 200:-200'))])
    sizes.update({'wrist_1': (1280, 720), 'front': (640, 480)})
    assert sizes.problem() is None
    assert sizes.diagnostic_values() == {'wrist_1 frame size': '1280x720',
                                         'front frame size': '640x480'}
    sizes.update({'wrist_1': (640, 480), 'front': (640, 480)})       # the camera changed mode
    assert sizes.problem().startswith("camera 'wrist_1': crop '150:450, 350:1100' reaches past "
                                      'its 640x480 frames (cols bound 1100 (640 cols)): the '
                                      'model sees rows 150:450, cols 350:640 of them')
    sizes.update({'wrist_1': (1280, 720), 'front': (640, 480)})
    assert sizes.problem() is None
