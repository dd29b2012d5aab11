"""The one-slot mailbox keeps the newest item and counts what it replaced."""
import threading
import time

from hil_serl_reward.pipeline.mailbox import LatestMailbox


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
