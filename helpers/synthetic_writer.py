"""Writing a synthetic data set in Kaggle's TGS layout, in worker processes, published atomically.

``write_synthetic_dataset`` writes train/images, train/masks, test/images as PNGs like the real
ones, train.csv, depths.csv and, last, a SYNTHETIC.json marker (generator version, seed, counts)
that identifies a complete set; the files are written in a staging folder and renamed into place
(``helpers.synthetic_staging``). Sections are generated in worker processes that leave Ctrl-C to
the parent and end with it, even when it is killed outright.
"""

from __future__ import annotations

import csv
import ctypes
import json
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.config import is_count
from helpers.errors import DataError
from helpers.rle import rle_encode
from helpers.synthetic_sections import GENERATOR_VERSION, generate_sample, sample_rng, synthetic_ids
from helpers.synthetic_staging import publish, staging_folder, writing_lock

MARKER_NAME = "SYNTHETIC.json"
DEFAULT_N_TRAIN = 4000
DEFAULT_N_TEST = 500
_PR_SET_PDEATHSIG = 1
# Fewer sections than this are written in-process: starting workers would cost more than it saves.
_MIN_PARALLEL = 200


def write_synthetic_dataset(
    out_dir: str | Path,
    n_train: int = DEFAULT_N_TRAIN,
    n_test: int = DEFAULT_N_TEST,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Write a synthetic set in Kaggle's layout to out_dir (atomically) and return the folder.

    It is written into a staging folder beside out_dir and renamed at the end, so nobody ever sees
    half a data set; a staging folder left by a killed run is removed by the next run. A folder that
    cannot be written (a file in the way, no permission, a full disk) is a DataError naming it.
    """
    out_dir = Path(out_dir).expanduser().absolute()
    check_counts(n_train, n_test, seed)
    workers = _check_workers(workers)
    marker = marker_for(seed, n_train, n_test)
    with os_errors_named(out_dir):
        if holds_set(out_dir, marker):
            return out_dir
        _refuse_if_occupied(out_dir, marker)
        _make_parent(out_dir)
        with staging_folder(out_dir) as staging:
            with writing_lock(staging):
                _write_layout(staging, marker, progress, workers)
            publish(staging, out_dir, partial(holds_set, marker=marker))
    return out_dir


def check_counts(n_train: int, n_test: int, seed: int) -> None:
    """Reject negative or non-integer counts and seeds."""
    for name, value in (("n_train", n_train), ("n_test", n_test), ("seed", seed)):
        if not is_count(value):
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _check_workers(workers: int | None) -> int:
    """Number of worker processes: the given one, else one per CPU core this process may use (at most 4)."""
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, min(4, cores))
    if not is_count(workers, 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    return int(workers)


def marker_for(seed: int, n_train: int, n_test: int) -> dict[str, object]:
    """Contents of the marker file that identifies a complete synthetic set."""
    return {
        "generator": "helpers.synthetic",
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_train": int(n_train),
        "n_test": int(n_test),
    }


def _read_marker(folder: Path) -> dict[str, object] | None:
    """The marker of a folder, or None when it has none or it cannot be read as a JSON object."""
    try:
        found = json.loads((folder / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def describe_marker(folder: Path, marker: dict[str, object]) -> str:
    """What a folder's marker says, for an error message: missing, unreadable, or other settings."""
    path = folder / MARKER_NAME
    if not path.exists():
        return f"it holds files but no {MARKER_NAME}, so they are not a synthetic set written here"
    found = _read_marker(folder)
    if found is None:
        return f"its {MARKER_NAME} is not a readable JSON object"
    if found != marker:
        return f"its {MARKER_NAME} describes a synthetic set with other settings ({found}), not {marker}"
    return f"its {MARKER_NAME} matches but its files do not"


def holds_set(folder: Path, marker: dict[str, object]) -> bool:
    """Whether folder is a complete synthetic set written with exactly these settings."""
    if _read_marker(folder) != marker:
        return False
    damage = []
    for name in ("train.csv", "depths.csv"):
        if not (folder / name).is_file():
            damage.append(f"{folder / name} is missing")
    counts = {"train/images": marker["n_train"], "train/masks": marker["n_train"], "test/images": marker["n_test"]}
    for sub, expected in counts.items():
        found, empty = _count_pngs(folder / sub)
        if found != expected:
            damage.append(f"{folder / sub} has {found} PNG files but the synthetic set's {MARKER_NAME} says {expected}")
        if empty:
            damage.append(f"{len(empty)} PNG file(s) in {folder / sub} are empty, e.g. {empty[0]}")
    if damage:
        raise DataError(
            f"{'; '.join(damage)}; the folder was changed after it was written: delete {folder} to generate it again"
        )
    return True


def _count_pngs(folder: Path) -> tuple[int, list[str]]:
    """Number of .png files in folder (0 when it does not exist), and the names of those that are empty."""
    if not folder.is_dir():
        return 0, []
    found, empty = 0, []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".png"):
                found += 1
                if entry.stat().st_size == 0:
                    empty.append(entry.name)
    return found, sorted(empty)


def _refuse_if_occupied(out_dir: Path, marker: dict[str, object]) -> None:
    """Raise if out_dir is a file, or a non-empty folder that is not this synthetic set."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"cannot write the synthetic data set to {out_dir}: it is a file, not a folder")
    if any(out_dir.iterdir()):
        raise FileExistsError(
            f"refusing to write the synthetic data set ({marker}) into {out_dir}: {describe_marker(out_dir, marker)}; "
            "choose an empty or new folder (nothing is ever overwritten)"
        )


@contextmanager
def os_errors_named(folder: Path, advice: str = "") -> Iterator[None]:
    """Turn an operating-system error (no permission, a file in the way, a full disk) into a DataError naming it."""
    try:
        yield
    except OSError as error:
        if error.errno is None:
            raise  # one of the writer's own refusals (FileExistsError with a message), already clear
        culprit = f" ({error.filename})" if error.filename else ""
        raise DataError(
            f"cannot write the synthetic data set to {folder}: {error.strerror or error}{culprit}; "
            + (advice or "choose a folder you can write to, on a disk with room (the default set takes about 70 MB)")
        ) from error


def _make_parent(out_dir: Path) -> None:
    """Create out_dir's parent folders, naming the file that is in the way if there is one."""
    for ancestor in reversed(out_dir.parents):
        if ancestor.exists() and not ancestor.is_dir():
            raise DataError(
                f"cannot write the synthetic data set to {out_dir}: {ancestor} is a file, not a folder; "
                "move that file away or choose another folder"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)


def _write_layout(root: Path, marker: dict[str, object], progress: bool, workers: int) -> None:
    """Write images, masks, train.csv, depths.csv and, last, the marker into root."""
    seed = int(marker["seed"])
    for sub in ("train/images", "train/masks", "test/images"):
        (root / sub).mkdir(parents=True)
    rows: dict[str, list[tuple[str, str, int]]] = {}
    train_ids = synthetic_ids(seed, "train", int(marker["n_train"]))
    ids = {"train": train_ids, "test": synthetic_ids(seed, "test", int(marker["n_test"]), taken=train_ids)}
    for split, split_ids in ids.items():
        rows[split] = _write_split(root, seed, split, split_ids, progress, workers)
    _write_csv(root / "train.csv", ["id", "rle_mask"], [(sample_id, rle) for sample_id, rle, _ in rows["train"]])
    depths = [(sample_id, depth) for split in ("train", "test") for sample_id, _, depth in rows[split]]
    _write_csv(root / "depths.csv", ["id", "z"], depths)
    (root / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")


def _write_split(
    root: Path, seed: int, split: str, ids: list[str], progress: bool, workers: int
) -> list[tuple[str, str, int]]:
    """Generate and save every section of one split; (id, run-length mask, depth) rows in order."""
    write_one = partial(_write_section, root, seed, split)
    if workers > 1 and len(ids) >= _MIN_PARALLEL:
        try:
            return _write_in_processes(write_one, ids, split if progress else None, workers)
        except BrokenProcessPool:
            # e.g. a script without `if __name__ == "__main__":` where processes are spawned, or a worker killed.
            warnings.warn(
                "could not start worker processes, or one died; generating the synthetic data in this one", stacklevel=2
            )
    return list(_progress(map(write_one, range(len(ids)), ids), len(ids), split, progress))


def _write_in_processes(
    write_one: Callable[[int, str], tuple[str, str, int]], ids: list[str], progress_label: str | None, workers: int
) -> list[tuple[str, str, int]]:
    """Run write_one over the ids in worker processes (each section has its own random stream)."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_setup, initargs=(os.getpid(),))
    try:
        done = pool.map(write_one, range(len(ids)), ids, chunksize=16)
        return list(_progress(done, len(ids), progress_label or "", progress_label is not None))
    finally:
        # On an error or Ctrl-C, drop the sections not started instead of waiting for them all.
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_setup(parent_pid: int) -> None:
    """In a worker: leave Ctrl-C to the parent, and end when the parent ends, even by kill -9."""
    # The parent reacts to Ctrl-C by cancelling the work and shutting the pool down cleanly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The process that started this one: the parent, or a fork server that itself ends with the parent.
    starter = os.getppid()
    if not _die_with_parent():
        threading.Thread(target=_exit_when_orphaned, args=(starter,), daemon=True).start()
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        os._exit(1)  # the parent died before the lines above could take effect


def _die_with_parent() -> bool:
    """Ask Linux to kill this process when its parent dies (prctl PR_SET_PDEATHSIG); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _exit_when_orphaned(starter: int) -> None:
    """Poll for the starting process's death (where no parent-death signal exists) and end this process then."""
    while os.getppid() == starter:
        time.sleep(0.5)
    os._exit(1)


def _write_section(root: Path, seed: int, split: str, index: int, sample_id: str) -> tuple[str, str, int]:
    """Generate section `index` of a split, save its PNGs and return (id, run-length mask, depth)."""
    sample = generate_sample(sample_rng(seed, split, index))
    _save_image(root / split / "images" / f"{sample_id}.png", sample.image)
    if split == "train":
        _save_mask(root / split / "masks" / f"{sample_id}.png", sample.mask)
    return sample_id, rle_encode(sample.mask), sample.depth


def _write_csv(path: Path, header: list[str], rows: list[tuple[str, object]]) -> None:
    """Write a CSV file with a header, in the csv module's (and Kaggle's) dialect."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _progress(items: Iterable, total: int, label: str, enabled: bool) -> Iterable:
    """Wrap items in a tqdm progress bar when enabled."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=f"synthetic {label}", unit="section")


def _save_image(path: Path, image: np.ndarray) -> None:
    """Save a [0, 1] image as 8-bit RGB with three equal channels, like the real PNGs."""
    grey = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    # Light compression: faster than the default, files about as large (docs/synthetic_data.md, Cost).
    Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2)).save(path, format="PNG", compress_level=1)


def _save_mask(path: Path, mask: np.ndarray) -> None:
    """Save a mask like the real ones: 16-bit 0/65535, or 8-bit zeros when there is no salt."""
    if mask.any():
        Image.fromarray((mask > 0.5).astype(np.uint16) * 65535).save(path, format="PNG", compress_level=1)
    else:
        Image.fromarray(np.zeros(mask.shape, dtype=np.uint8)).save(path, format="PNG")
