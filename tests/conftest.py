"""Shared fixtures: where the real TGS files are, and a small built-in (synthetic) data set."""

from __future__ import annotations

import os
import subprocess
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REAL_DATA = PROJECT_ROOT.parent / "shared" / "data" / "tgs-salt"


def real_data_dir_or_none() -> Path | None:
    """The real TGS folder from SALT_DATA_DIR, else ../shared/data/tgs-salt, else None."""
    candidate = os.environ.get("SALT_DATA_DIR") or str(DEFAULT_REAL_DATA)
    path = Path(candidate)
    return path if (path / "train" / "images").is_dir() else None


def fresh_rng(seed: int = 0):
    """A fresh NumPy generator for a test, seeded."""
    import numpy as np

    return np.random.default_rng(seed)


def tiny_config(data_dir: Path, **overrides):
    """A config that trains in seconds: 32x32 resized inputs, a two-level U-Net with 4 base filters."""
    from helpers.config import TrainConfig

    values = dict(data_dir=str(data_dir), n_images=96, img_size=32, sizing="resize", depth=2, base_filters=4,
                  batch_size=16, epochs=3, learning_rate=3e-3, progress=False, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real TGS files; skips with the reason when they are not on this machine."""
    path = real_data_dir_or_none()
    if path is None:
        pytest.skip(
            "real TGS data not found: set SALT_DATA_DIR to a folder in Kaggle's layout "
            f"(looked at {os.environ.get('SALT_DATA_DIR') or DEFAULT_REAL_DATA})"
        )
    return path


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small built-in data set in Kaggle's layout, generated once per test session."""
    from helpers.synthetic import write_synthetic_dataset

    out = tmp_path_factory.mktemp("synthetic") / "salt"
    write_synthetic_dataset(out, n_train=120, n_test=16, seed=0)
    return out


@contextmanager
def read_only(folder: Path):
    """Make folder read-only for this process while the block runs, as a user's folder can be.

    Root writes through permission bits, so as root (as CI runs) the folder is bind-mounted read-only onto
    itself; otherwise its write bits are cleared.
    """
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")] if path.is_dir()}
        for path, mode in modes.items():
            path.chmod(mode & ~0o222)
        try:
            yield folder
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only folder here as root (mount --bind: {mounted.stderr.strip()})")
    try:
        remounted = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True)
        if remounted.returncode != 0:
            pytest.skip(f"cannot remount a folder read-only here ({remounted.stderr.strip()})")
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def read_only_dir():
    """A factory: read_only_dir(folder) keeps folder read-only until the test ends."""
    with ExitStack() as stack:
        yield lambda folder: stack.enter_context(read_only(folder))
