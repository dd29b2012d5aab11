"""The sync wait of the latency budget (from a set's first frame arriving to its completion)
and each camera's last frame through the checks."""
import pytest

from hil_serl_reward.pipeline.set_timing import ArrivalTimes


def test_arrival_times_give_the_wait_from_a_sets_first_frame():
    now = [10.0]
    arrivals = ArrivalTimes(cameras=2, keep=2, clock=lambda: now[0])
    arrivals.arrived(0, 100)
    now[0] = 10.03
    arrivals.arrived(1, 101)
    arrivals.arrived(0, 200)
    now[0] = 10.05
    assert arrivals.sync_wait((100, 101)) == pytest.approx(0.05)   # camera 0's frame waited
    assert arrivals.sync_wait((200, 101)) == pytest.approx(0.02)
    arrivals.arrived(0, 300)
    arrivals.arrived(0, 400)                  # keep=2: the frame stamped 100 is forgotten
    assert arrivals.sync_wait((100, 101)) is None
    arrivals.clear()
    assert arrivals.sync_wait((300, 101)) is None


def test_arrival_times_say_when_each_camera_last_got_a_frame_through():
    now = [5.0]
    arrivals = ArrivalTimes(cameras=2, keep=2, clock=lambda: now[0])
    assert arrivals.last(0) is None and arrivals.last(1) is None
    arrivals.arrived(1, 100)
    now[0] = 6.0
    arrivals.arrived(1, 200)
    assert (arrivals.last(0), arrivals.last(1)) == (None, 6.0)
    arrivals.clear()                          # a time reset: nothing kept
    assert arrivals.last(1) is None
