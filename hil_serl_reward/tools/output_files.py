"""The tools' pictures, written whole or not at all, and a failed write said.

cv2.imwrite returns False instead of raising (a full disk, a read-only folder), which left a
tool reporting pictures it had not written."""
from pathlib import Path

import cv2
import numpy as np

from hil_serl_reward.model.atomic_files import write_atomically


def write_png(path: Path, rgb: np.ndarray) -> None:
    """An RGB picture as PNG, or OSError."""
    encoded, data = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise OSError(f'could not encode {path} as PNG')
    write_atomically({Path(path): data.tobytes()})
