"""The sync wait of the latency budget: from a set's first frame arriving to its completion."""
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
