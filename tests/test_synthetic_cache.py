"""Tests for helpers.synthetic_cache: the built-in set generated once in the cache, and a cache gone wrong."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import synthetic_cache
from helpers.errors import DataError
from helpers.synthetic_cache import builtin_data_dir, cache_root

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under folder, by relative path, with its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SALT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "unet-salt-course"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "unet-salt-course"
    monkeypatch.setenv("SALT_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def test_builtin_data_dir_generates_once_then_reuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SALT_CACHE_DIR", str(tmp_path))
    first = builtin_data_dir(n_train=4, n_test=2, seed=0)
    assert first == tmp_path / "synthetic-v1-seed0-n4-test2"
    said = capsys.readouterr().out
    assert "Generating the built-in synthetic data set" in said and str(first) in said
    stamp = (first / "SYNTHETIC.json").stat().st_mtime_ns
    assert builtin_data_dir(n_train=4, n_test=2, seed=0) == first
    assert "Generating" not in capsys.readouterr().out
    assert (first / "SYNTHETIC.json").stat().st_mtime_ns == stamp


def test_builtin_data_dir_default_name() -> None:
    assert synthetic_cache._cache_name(0, 4000, 500) == "synthetic-v1-seed0-n4000"


def test_builtin_data_dir_rejects_bad_counts_before_anything_else(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SALT_CACHE_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="n_train"):
        builtin_data_dir(n_train=-5)
    assert capsys.readouterr().out == "" and list(tmp_path.iterdir()) == []


def test_concurrent_first_use_from_two_processes(tmp_path: Path) -> None:
    code = "from helpers.synthetic import builtin_data_dir; print(builtin_data_dir(n_train=10, n_test=3, seed=0))"
    env = {**os.environ, "SALT_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-c", code]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    runs = [subprocess.Popen(command, env=env, **pipes) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    folders = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert folders == {str(tmp_path / "synthetic-v1-seed0-n10-test3")}
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic-v1-seed0-n10-test3"]
    assert len(list((tmp_path / "synthetic-v1-seed0-n10-test3" / "train" / "images").glob("*.png"))) == 10


def _cache_set(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """A complete tiny built-in set in the cache root `root`."""
    monkeypatch.setenv("SALT_CACHE_DIR", str(root))
    return builtin_data_dir(n_train=3, n_test=1, seed=0)


@pytest.mark.parametrize(
    ("marker_text", "said"),
    [
        ("{garbage", "not a readable JSON object"),
        ("[1, 2]", "not a readable JSON object"),
        (None, "holds files but no SYNTHETIC.json"),
        ('{"generator": "helpers.synthetic", "version": 1, "seed": 0, "n_train": 5, "n_test": 1}', "other settings"),
    ],
)
def test_a_cache_with_a_damaged_marker_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, marker_text: str | None, said: str
) -> None:
    folder = _cache_set(monkeypatch, tmp_path)
    if marker_text is None:
        (folder / "SYNTHETIC.json").unlink()
    else:
        (folder / "SYNTHETIC.json").write_text(marker_text)
    before = _files(folder)
    damaged = rf"cache folder {re.escape(str(folder))} is damaged: .*{said}.*delete that folder"
    with pytest.raises(DataError, match=damaged):
        builtin_data_dir(n_train=3, n_test=1, seed=0)
    assert _files(folder) == before  # nothing is deleted or overwritten


@pytest.mark.parametrize(
    ("damage", "said"),
    [("empty_png", r"1 PNG file\(s\) in .*train/images are empty"), ("no_depths", r"depths\.csv is missing")],
)
def test_a_cache_with_damaged_files_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, damage: str, said: str
) -> None:
    folder = _cache_set(monkeypatch, tmp_path)
    if damage == "empty_png":
        sorted((folder / "train" / "images").glob("*.png"))[0].write_bytes(b"")
    else:
        (folder / "depths.csv").unlink()
    with pytest.raises(DataError, match=rf"{said}.*delete {re.escape(str(folder))} to generate it again"):
        builtin_data_dir(n_train=3, n_test=1, seed=0)


@pytest.mark.parametrize("where", ["root", "under_root", "cache_folder"])
def test_a_file_in_the_way_of_the_cache_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("mine")
    if where == "cache_folder":
        monkeypatch.setenv("SALT_CACHE_DIR", str(tmp_path))
        blocker = tmp_path / "synthetic-v1-seed0-n3-test1"
        blocker.write_text("mine")
        expected = rf"cache folder {re.escape(str(blocker))} is a file"
    else:
        monkeypatch.setenv("SALT_CACHE_DIR", str(blocker if where == "root" else blocker / "sub"))
        expected = rf"{re.escape(str(blocker))} is a file, not a folder"
    with pytest.raises(DataError, match=rf"{expected}.*set \$SALT_CACHE_DIR to a folder you can write to"):
        builtin_data_dir(n_train=3, n_test=1, seed=0)
    assert blocker.read_text() == "mine"


def _refuse_writes_under(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Make every mkdir under root fail as on a read-only folder (root ignores real permissions)."""
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        if self == root or root in self.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)


def test_an_unwritable_cache_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SALT_CACHE_DIR", str(tmp_path / "locked"))
    _refuse_writes_under(monkeypatch, tmp_path / "locked")
    with pytest.raises(DataError, match=r"cannot write the synthetic data set to .*locked/synthetic-v1-seed0-n3-test1: "
                                        r"Permission denied.*\$SALT_CACHE_DIR \(.*locked\)"):
        builtin_data_dir(n_train=3, n_test=1, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_cache_holding_the_set_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = _cache_set(monkeypatch, tmp_path)
    _refuse_writes_under(monkeypatch, tmp_path)
    assert builtin_data_dir(n_train=3, n_test=1, seed=0) == folder
