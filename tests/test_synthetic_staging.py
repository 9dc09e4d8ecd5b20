"""Tests for helpers.synthetic_staging: atomic publication, leftovers of killed writers, a lost race."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers import synthetic_staging, synthetic_writer
from helpers.synthetic_writer import write_synthetic_dataset


def test_losing_the_race_uses_the_winners_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "salt"
    real_write_layout = synthetic_writer._write_layout

    def racing(root: Path, marker: dict[str, object], progress: bool, workers: int) -> None:
        real_write_layout(root, marker, progress, workers)
        shutil.copytree(root, out)  # another process publishes the same set first

    monkeypatch.setattr(synthetic_writer, "_write_layout", racing)
    assert write_synthetic_dataset(out, n_train=3, n_test=1, progress=False) == out
    assert (out / "SYNTHETIC.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["salt"]


def test_staging_left_by_a_dead_writer_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    dead, live, unlocked = (tmp_path / f".salt.partial-{name}" for name in ("1-dead", "2-live", "3-new"))
    for staging in (dead, live, unlocked):
        (staging / "train" / "images").mkdir(parents=True)
        (staging / "train" / "images" / "half.png").write_bytes(b"\x89PNG")
    (dead / synthetic_staging.LOCK_NAME).write_text("")
    (live / synthetic_staging.LOCK_NAME).write_text("")
    old_unlocked = tmp_path / ".salt.partial-4-old"
    shutil.copytree(unlocked, old_unlocked)
    os.utime(old_unlocked, (0, 0))  # no lock file and long untouched: killed before it could lock
    with open(live / synthetic_staging.LOCK_NAME) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a writer still at work
        out = write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, unlocked.name, "salt"]
    assert not (out / synthetic_staging.LOCK_NAME).exists()
