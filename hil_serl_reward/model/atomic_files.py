"""Files written whole or not at all, and folders checked before the work that fills them.

Checkpoints, classifier_data chunks and the tools' pictures all have readers that trust what
they find: a truncated file, or a checkpoint beside an older run's sidecar, is worse than no
file. A folder found unwritable only after minutes of training or recording loses that work.
"""
import os
import tempfile
from pathlib import Path
from typing import Mapping


def check_writable(folder: os.PathLike) -> Path:
    """Create `folder` and put a file in it (removed again); OSError says why it cannot."""
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass
    return folder


def write_atomically(contents: Mapping[Path, bytes]) -> None:
    """Each file to a hidden temporary beside it, synced, then all renamed into place: a full
    disk, a crash or Ctrl-C while writing leaves the folder as it was (a crash between two of
    the renames, microseconds apart, is the one gap), and never a temporary file."""
    temporary = {path: path.with_name(f'.{path.name}.tmp') for path in contents}
    try:
        for path, data in contents.items():
            with temporary[path].open('wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for path, tmp in temporary.items():
            os.replace(tmp, path)
    finally:
        for tmp in temporary.values():
            tmp.unlink(missing_ok=True)
