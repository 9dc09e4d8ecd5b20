"""Writing a file so that nobody ever reads half of it: write beside it, then rename over it in one step."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` (best.tmp.keras for best.keras) to write; renamed onto path afterwards.

    os.replace is atomic on one file system: a reader sees the old file or the new one, and a kill while
    writing leaves the old file and a *.tmp.* file that the next writer replaces.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    yield tmp
    os.replace(tmp, path)
