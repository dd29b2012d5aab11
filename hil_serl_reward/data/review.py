"""The node's review folder (no ROS): every camera set it called a success, kept as the model
inputs it classified, in hil-serl's classifier_data format, one file per set.

HIL-SERL policies learn to exploit a classifier's false positives. Kept here, each success can
be looked at (`evaluate --classifier-data <review_dir>` draws them on review.png) and a false
one renamed from `*_success_images_*` to `*_failure_images_*` and added to the training data.
Writing happens on a thread of its own so that inference never waits for the disk; when the
disk cannot keep up, sets are dropped and counted rather than queued without bound.
"""
import queue
import threading
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from hil_serl_reward.data.classifier_data import ClassifierDataWriter, DataWriteError, transition

EXPERIMENT = 'review'


class ReviewFolder:
    def __init__(self, folder: Path, queue_size: int = 64) -> None:
        self.writer = ClassifierDataWriter(folder, EXPERIMENT, flush_every=1)   # may raise
        self._queue: 'queue.Queue[Optional[Dict[str, np.ndarray]]]' = queue.Queue(queue_size)
        self.kept = 0
        self.dropped = 0
        self.write_failures = 0
        self.last_error: Optional[str] = None
        self._thread = threading.Thread(target=self._write, name='review', daemon=True)
        self._thread.start()

    def keep(self, images: Dict[str, np.ndarray]) -> None:
        """Queue one set's model inputs (never blocks)."""
        try:
            self._queue.put_nowait(images)
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        while (images := self._queue.get()) is not None:
            try:
                self.writer.add(transition(images, {}), success=True)
                self.kept += 1
            except DataWriteError as exc:
                self.writer.discard_unwritten()
                self.write_failures += 1
                self.last_error = str(exc)

    def close(self) -> None:
        """Writes what is queued, then stops."""
        self._queue.put(None)
        self._thread.join(timeout=30.0)
