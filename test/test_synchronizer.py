"""Our approximate-time synchroniser: matches, misses, eviction, order, monotonic sets."""
import pytest

from hil_serl_reward.pipeline.synchronizer import ApproximateTimeSync

MS = 1_000_000


def make(num_inputs=2, queue_size=10, slop_s=0.02):
    sets = []
    sync = ApproximateTimeSync(num_inputs, queue_size, slop_s,
                               lambda msgs, stamps: sets.append(stamps))
    return sync, sets


def test_pairs_within_slop_match_and_outside_do_not():
    sync, sets = make(slop_s=0.02)
    sync.add(0, 100 * MS, 'a100')
    sync.add(1, 115 * MS, 'b115')
    sync.add(0, 200 * MS, 'a200')
    sync.add(1, 230 * MS, 'b230')
    assert sets == [(100 * MS, 115 * MS)]


def test_spread_equal_to_slop_matches():
    """Inclusive rule (message_filters needs strictly less)."""
    sync, sets = make(slop_s=0.02)
    sync.add(0, 100 * MS, 'a')
    sync.add(1, 120 * MS, 'b')
    assert sets == [(100 * MS, 120 * MS)]


def test_nearest_candidate_is_chosen_and_callback_gets_messages():
    got = []
    sync = ApproximateTimeSync(2, 10, 0.03, lambda msgs, stamps: got.append(msgs))
    sync.add(0, 100 * MS, 'a100')
    sync.add(0, 110 * MS, 'a110')
    sync.add(1, 112 * MS, 'b112')
    assert got == [('a110', 'b112')]


def test_out_of_order_arrival_still_matches():
    sync, sets = make()
    sync.add(1, 205 * MS, 'b205')
    sync.add(1, 105 * MS, 'b105')
    sync.add(0, 100 * MS, 'a100')
    assert sets == [(100 * MS, 105 * MS)]
    sync.add(0, 200 * MS, 'a200')
    assert sets[-1] == (200 * MS, 205 * MS)


def test_never_older_after_newer():
    """a200/b201 emitted first: a100/b101 arriving later are refused, not emitted."""
    sync, sets = make()
    sync.add(0, 200 * MS, 'a200')
    sync.add(1, 201 * MS, 'b201')
    assert sync.add(0, 100 * MS, 'a100') is False
    assert sync.add(1, 101 * MS, 'b101') is False
    assert sets == [(200 * MS, 201 * MS)]
    assert sync.counts['stale'] == [1, 1]


def test_older_unmatched_messages_are_pruned_when_a_newer_set_is_emitted():
    sync, sets = make()
    sync.add(0, 100 * MS, 'a100')      # never matched
    sync.add(0, 200 * MS, 'a200')
    sync.add(1, 201 * MS, 'b201')
    assert sets == [(200 * MS, 201 * MS)]
    assert sync.pending() == [0, 0]
    assert sync.counts['pruned'] == [1, 0]


def test_queue_size_evicts_oldest():
    sync, sets = make(queue_size=3)
    for t in (100, 200, 300, 400):
        sync.add(0, t * MS, f'a{t}')
    assert sync.counts['evicted'] == [1, 0]
    sync.add(1, 101 * MS, 'b101')        # a100 was evicted: no match
    assert sets == []
    sync.add(1, 301 * MS, 'b301')
    assert sets == [(300 * MS, 301 * MS)]


def test_same_stamp_replaces_queued_message():
    got = []
    sync = ApproximateTimeSync(2, 10, 0.02, lambda msgs, stamps: got.append(msgs))
    sync.add(0, 100 * MS, 'first')
    sync.add(0, 100 * MS, 'second')
    sync.add(1, 100 * MS, 'b')
    assert got == [('second', 'b')]


def test_three_cameras_need_a_common_window():
    """b and c are each within slop of a, but 2*slop apart: no set until c moves closer."""
    sync, sets = make(num_inputs=3, slop_s=0.02)
    sync.add(0, 100 * MS, 'a')
    sync.add(1, 80 * MS, 'b')
    sync.add(2, 120 * MS, 'c120')
    assert sets == []
    sync.add(2, 95 * MS, 'c95')
    assert sets == [(100 * MS, 80 * MS, 95 * MS)]


def test_four_cameras_with_jitter_emit_every_frame():
    sync, sets = make(num_inputs=4, slop_s=0.01)
    for frame in range(50):
        base = frame * 33 * MS
        for cam in (3, 1, 0, 2):
            sync.add(cam, base + cam * MS, (cam, frame))
    assert len(sets) == 50 and sync.counts['sets'] == 50


@pytest.mark.parametrize('args', [(0, 10, 0.1), (2, 0, 0.1), (2, 10, -1.0)])
def test_invalid_configuration(args):
    with pytest.raises(ValueError):
        ApproximateTimeSync(*args, lambda m, s: None)


def test_reset_starts_a_new_timeline():
    sync, sets = make()
    sync.add(0, 10_000 * MS, 'a')
    sync.add(1, 10_005 * MS, 'b')
    sync.add(0, 10_100 * MS, 'waiting')
    assert not sync.add(1, 1_000 * MS, 'old')          # older than the emitted set: stale
    sync.reset()
    assert sync.pending() == [0, 0]
    sync.add(0, 1_000 * MS, 'a2')
    sync.add(1, 1_005 * MS, 'b2')
    assert sets == [(10_000 * MS, 10_005 * MS), (1_000 * MS, 1_005 * MS)]
