"""Loading a new classifier beside the one that serves.

Reading, checking and warming up a checkpoint takes 0.3-3 s (compiling, for a new shape,
4-5 s on the CI VM). Done on the executor thread, as `ros2 param set ... checkpoint_path`
did, it published nothing for that long: an RL wrapper with a 1 s timeout failed on every
reload. Here the load runs on a thread of its own while the old model keeps serving; the
caller swaps the new one in when `done` reports it, between two camera sets.

One load at a time, the others wait their turn: `ros2 param load` of a file changing two
stages' checkpoints sets them one after the other, within milliseconds, and refusing the
second as busy left it unloaded (and the parameter unchanged). A request for a `key` that
is already waiting replaces it (the newest path wins); the queue is as long as there are
keys (stages), so it cannot grow without bound.

The thread is not a daemon: a process that exits while XLA compiles on another thread aborts
("terminate called after throwing an instance of ''", exit code 134, measured with jaxlib
0.10.2), so a node stopped during a load exits when the load has ended.
"""
import collections
import threading
import time
from typing import Any, Callable, Generic, Hashable, Optional, Tuple, TypeVar

Model = TypeVar('Model')
# load(path, token) and done(path, token, model or None, the exception that ended the load or
# None), on the loading thread; `token` is start's, e.g. to tell a load started before a
# cleanup, or which stage of several loads.
Done = Callable[[str, Any, Optional[Model], Optional[Exception]], None]


class ModelReload(Generic[Model]):
    def __init__(self, load: Callable[[str, Any], Model], done: Done) -> None:
        self._load = load
        self._done = done
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._waiting: 'collections.OrderedDict[Hashable, Tuple[str, Any]]' = \
            collections.OrderedDict()
        self._path = ''
        self._started = 0.0

    def start(self, path: str, token: Any = None, key: Hashable = None) -> Optional[str]:
        """Starts loading `path`, or queues it behind the load that runs (replacing a waiting
        request of the same `key`); returns None when it started, else what it waits for."""
        with self._lock:
            if self._thread is not None:
                self._waiting.pop(key, None)
                self._waiting[key] = (path, token)
                return (f'queued behind {self._path!r} '
                        f'({time.monotonic() - self._started:.1f} s so far)')
            self._begin(path)
            self._thread = threading.Thread(target=self._run, args=(path, token), name='reload')
            self._thread.start()
        return None

    def _begin(self, path: str) -> None:
        self._path, self._started = path, time.monotonic()

    def _run(self, path: str, token: Any) -> None:
        while True:
            try:
                model, error = self._load(path, token), None
            except Exception as exc:  # a reload must never end the node (MemoryError and
                model, error = None, exc              # RecursionError included): it is reported
            try:
                self._done(path, token, model, error)
            except BaseException:     # the caller's bug: the thread ends, the queue with it
                with self._lock:
                    self._thread = None
                    self._waiting.clear()
                raise
            with self._lock:
                if not self._waiting:
                    self._thread = None
                    return
                path, token = self._waiting.popitem(last=False)[1]
                self._begin(path)

    def drop_waiting(self) -> None:
        """Forgets the queued requests (a cleanup: configure loads anew); the running load
        finishes and its token tells the caller to drop it."""
        with self._lock:
            self._waiting.clear()

    @property
    def loading(self) -> Optional[str]:
        """What is loading and for how long (and how many wait), or None."""
        with self._lock:
            if self._thread is None:
                return None
            waiting = f', {len(self._waiting)} waiting' if self._waiting else ''
            return f'{self._path} ({time.monotonic() - self._started:.1f} s{waiting})'

    def join(self, timeout: float) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
