"""The reload thread's queue (pipeline/model_reload.py), without ROS: one load at a time,
the others wait their turn, the newest request of a key replaces the waiting one, a failed
load neither ends the thread nor loses the queue, a cleanup forgets what waits."""
import threading

from hil_serl_reward.pipeline.model_reload import ModelReload


class GatedLoads:
    """Loads that each wait for `release` (so requests can pile up behind them) and record
    what they loaded and what `done` was told."""

    def __init__(self, failing=()):
        self.release = threading.Semaphore(0)
        self.started = threading.Semaphore(0)
        self.failing = set(failing)
        self.loaded, self.done = [], []
        self.finished = threading.Event()
        self.reload = ModelReload(self.load, self.report)

    def load(self, path, token):
        self.started.release()
        assert self.release.acquire(timeout=10), 'the test never released the load'
        self.loaded.append((path, token))
        if path in self.failing:
            raise OSError(f'cannot read {path}')
        return f'model of {path}'

    def report(self, path, token, model, error):
        self.done.append((path, model, None if error is None else str(error)))

    def run_out(self, loads):
        for _ in range(loads):
            self.release.release()
        self.reload.join(timeout=10)


def test_requests_during_a_load_wait_their_turn_and_the_newest_of_a_key_wins():
    gated = GatedLoads()
    assert gated.reload.start('grasp_v1', 'token 1', key='grasp') is None     # starts at once
    assert gated.started.acquire(timeout=10)
    queued = gated.reload.start('place_v1', 'token 2', key='place')
    assert queued.startswith("queued behind 'grasp_v1'")
    gated.reload.start('grasp_v2', 'token 3', key='grasp')
    gated.reload.start('place_v2', 'token 4', key='place')       # replaces place_v1
    assert gated.reload.loading.startswith('grasp_v1 (') and '2 waiting' in gated.reload.loading
    gated.run_out(3)
    assert gated.loaded == [('grasp_v1', 'token 1'), ('grasp_v2', 'token 3'),
                            ('place_v2', 'token 4')]
    assert [model for _, model, _ in gated.done] == [
        'model of grasp_v1', 'model of grasp_v2', 'model of place_v2']
    assert gated.reload.loading is None
    assert gated.reload.start('grasp_v3', key='grasp') is None      # idle again: starts at once
    gated.run_out(1)
    assert gated.loaded[-1] == ('grasp_v3', None)


def test_a_failed_load_is_reported_and_the_queue_goes_on():
    gated = GatedLoads(failing={'corrupt'})
    gated.reload.start('corrupt', key='place')
    assert gated.started.acquire(timeout=10)
    gated.reload.start('good', key='grasp')
    gated.run_out(2)
    assert gated.done == [('corrupt', None, 'cannot read corrupt'),
                          ('good', 'model of good', None)]


def test_a_cleanup_forgets_the_waiting_requests_not_the_running_one():
    gated = GatedLoads()
    gated.reload.start('running', key=None)
    assert gated.started.acquire(timeout=10)
    gated.reload.start('waiting', key='place')
    gated.reload.drop_waiting()
    gated.run_out(1)
    assert [path for path, _ in gated.loaded] == ['running']
    assert gated.reload.loading is None


def test_a_failing_done_ends_the_thread_without_leaving_it_marked_busy(monkeypatch):
    def broken_done(path, token, model, error):
        raise RuntimeError('a bug in the caller')
    uncaught = []
    monkeypatch.setattr(threading, 'excepthook', uncaught.append)
    release = threading.Event()
    reload = ModelReload(lambda path, token: release.wait(10), broken_done)
    reload.start('first')
    reload.start('second', key='other')
    release.set()
    reload.join(timeout=10)
    assert [str(args.exc_value) for args in uncaught] == ['a bug in the caller']
    assert reload.loading is None
    assert reload.start('third') is None        # not refused as queued behind a dead thread
    reload.join(timeout=10)
