"""The success debounce (min_consecutive) on the per-set decisions, without ROS."""
from hil_serl_reward.pipeline.camera_set import ConsecutiveSuccess, RewardResult


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
