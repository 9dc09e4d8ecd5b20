"""The built-in synthetic data set: generated once into the course's cache folder, then reused.

``builtin_data_dir`` returns the cached set, writing it on first use; a cache that is damaged, in
the way of a file or not writable is one DataError saying what to delete or where to point
$SALT_CACHE_DIR. Nothing in the cache is ever repaired or deleted behind the reader's back.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers.errors import DataError
from helpers.synthetic_sections import GENERATOR_VERSION
from helpers.synthetic_writer import (
    DEFAULT_N_TEST,
    DEFAULT_N_TRAIN,
    check_counts,
    describe_marker,
    holds_set,
    marker_for,
    os_errors_named,
    write_synthetic_dataset,
)

CACHE_ENV = "SALT_CACHE_DIR"


def builtin_data_dir(n_train: int = DEFAULT_N_TRAIN, n_test: int = DEFAULT_N_TEST, seed: int = 0) -> Path:
    """The built-in synthetic set in the cache folder, generated there on first use."""
    check_counts(n_train, n_test, seed)
    folder = cache_root() / _cache_name(seed, n_train, n_test)
    marker = marker_for(seed, n_train, n_test)
    with os_errors_named(folder, _cache_advice()):
        if holds_set(folder, marker):
            return folder
        _refuse_damaged_cache(folder, marker)
    print(
        f"Generating the built-in synthetic data set ({n_train} training + {n_test} test sections) "
        f"into {folder} (first use only; about a minute of CPU time, shared out over the cores)",
        flush=True,
    )
    try:
        return write_synthetic_dataset(folder, n_train=n_train, n_test=n_test, seed=seed, progress=True)
    except DataError as error:
        raise DataError(f"{error}; {_cache_advice()}") from error


def cache_root() -> Path:
    """The course's cache folder: $SALT_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache, plus unet-salt-course."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().absolute() / "unet-salt-course"


def _cache_advice() -> str:
    """How to point the built-in data set's cache elsewhere, naming where it is now taken from."""
    explicit = os.environ.get(CACHE_ENV)
    origin = f"${CACHE_ENV} ({explicit})" if explicit else f"{cache_root()} (${CACHE_ENV} is not set)"
    return (
        f"the built-in data set is cached under {origin}: set ${CACHE_ENV} to a folder you can write to, "
        "or point DATA_DIR (or $SALT_DATA_DIR) at a data set of your own"
    )


def _refuse_damaged_cache(folder: Path, marker: dict[str, object]) -> None:
    """Raise when the cache folder exists and holds something other than this (complete) set."""
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise DataError(
            f"the built-in data set's cache folder {folder} is a file (or a broken link), not a folder: "
            f"delete it and run again to have the data set generated there; {_cache_advice()}"
        )
    if any(folder.iterdir()):
        raise DataError(
            f"the built-in data set's cache folder {folder} is damaged: {describe_marker(folder, marker)}; "
            "delete that folder and run again to have it generated afresh"
        )


def _cache_name(seed: int, n_train: int, n_test: int) -> str:
    """Folder name of a cached set, e.g. synthetic-v1-seed0-n4000."""
    name = f"synthetic-v{GENERATOR_VERSION}-seed{seed}-n{n_train}"
    return name if n_test == DEFAULT_N_TEST else f"{name}-test{n_test}"
