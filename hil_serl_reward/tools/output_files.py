"""What the tools write: the folder checked before the work, and a failed write said.

A folder found unwritable after minutes of training or inference loses that work, and
cv2.imwrite returns False instead of raising (a full disk, a read-only folder), which left a
tool reporting pictures it had not written."""
import tempfile
from pathlib import Path

import cv2
import numpy as np


def check_writable(folder: Path) -> Path:
    """Create `folder` and put a file in it (removed again); OSError says why it cannot."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix='.writable_'):
        pass
    return folder


def write_png(path: Path, rgb: np.ndarray) -> None:
    """An RGB picture as PNG, or OSError."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {path} (full disk or no write access?)')
