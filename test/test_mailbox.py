"""The one-slot mailbox keeps the newest item and counts what it replaced."""
import threading
import time

import pytest

from hil_serl_reward.pipeline.mailbox import LatestMailbox, take_each


def test_newest_wins_and_replacements_are_counted():
    box = LatestMailbox()
    for i in range(5):
        box.post(i)
    assert box.take(timeout=0) == 4
    assert box.replaced == 4 and box.posted == 5
    assert box.take(timeout=0.01) is None


def test_take_waits_for_a_post_and_close_wakes_it():
    box = LatestMailbox()
    got = []
    consumer = threading.Thread(target=lambda: got.append(box.take(timeout=5)))
    consumer.start()
    time.sleep(0.05)
    box.post('x')
    consumer.join(2)
    assert got == ['x']
    waiter = threading.Thread(target=lambda: got.append(box.take(timeout=5)))
    waiter.start()
    box.close()
    waiter.join(2)
    assert not waiter.is_alive() and got[-1] is None


def test_wait_is_time_from_the_newest_post_to_take():
    now = [10.0]
    box = LatestMailbox(clock=lambda: now[0])
    box.post('old')
    now[0] = 10.5
    box.post('new')
    now[0] = 10.75
    assert box.take(timeout=0) == 'new'
    box.post('next')
    assert box.take(timeout=0) == 'next'
    waits = box.waits.percentiles(0, 100)
    assert (waits['p0'], waits['p100']) == (0.0, 0.25)


def test_a_closed_mailbox_hands_out_nothing_more():
    box = LatestMailbox()
    box.post('left over')
    box.close()
    assert box.take() is None          # no timeout: returns at once, does not wait


def test_take_each_takes_every_waiting_item_and_never_waits_for_the_rest():
    """A node serving several rigs: one worker, a mailbox per rig; what is waiting when the
    worker comes is one batch, the newest of each rig, in rig order."""
    condition = threading.Condition()
    left, middle, right = (LatestMailbox(condition=condition) for _ in range(3))
    right.post('r1')
    left.post('l1')
    left.post('l2')
    assert take_each([left, middle, right], timeout=0) == [(0, 'l2'), (2, 'r1')]
    assert left.replaced == 1 and take_each([left, middle, right], timeout=0.01) is None
    got = []
    worker = threading.Thread(target=lambda: got.append(take_each([left, middle, right], 5)))
    worker.start()
    time.sleep(0.05)
    middle.post('m1')                           # wakes the worker at once, alone
    worker.join(2)
    assert got == [[(1, 'm1')]]
    right.post('r2')
    middle.close()                              # deactivate: no more batches
    assert take_each([left, middle, right], timeout=0) is None


def test_take_each_refuses_mailboxes_without_a_shared_condition():
    with pytest.raises(ValueError, match='shared condition'):
        take_each([LatestMailbox(), LatestMailbox()], timeout=0)
