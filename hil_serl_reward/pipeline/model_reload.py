"""Loading a new classifier beside the one that serves.

Reading, checking and warming up a checkpoint takes 0.3-3 s (compiling, for a new shape,
4-5 s on the CI VM). Done on the executor thread, as `ros2 param set ... checkpoint_path`
did, it published nothing for that long: an RL wrapper with a 1 s timeout failed on every
reload. Here the load runs on a thread of its own while the old model keeps serving; the
caller swaps the new one in when `done` reports it, between two camera sets. One load at a
time: a second request while one runs is refused, saying which runs.
"""
import threading
import time
from typing import Any, Callable, Generic, Optional, TypeVar

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
        self._path = ''
        self._started = 0.0

    def start(self, path: str, token: Any = None) -> Optional[str]:
        """Starts loading `path`; returns why not when a load is already running."""
        with self._lock:
            if self._thread is not None:
                return (f'a reload of {self._path!r} is under way '
                        f'({time.monotonic() - self._started:.1f} s so far); try again when '
                        f'it is done')
            self._path, self._started = path, time.monotonic()
            self._thread = threading.Thread(target=self._run, args=(path, token), name='reload',
                                            daemon=True)
            self._thread.start()
        return None

    def _run(self, path: str, token: Any) -> None:
        try:
            model, error = self._load(path, token), None
        except Exception as exc:  # a reload must never end the node (MemoryError and
            model, error = None, exc              # RecursionError included): it is reported
        try:
            self._done(path, token, model, error)
        finally:
            with self._lock:
                self._thread = None

    @property
    def loading(self) -> Optional[str]:
        """What is loading and for how long, or None."""
        with self._lock:
            if self._thread is None:
                return None
            return f'{self._path} ({time.monotonic() - self._started:.1f} s)'

    def join(self, timeout: float) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
