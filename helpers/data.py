"""Reading the TGS salt data from a folder in Kaggle's layout, and splitting it by salt coverage.

Layout (what Kaggle's download unpacks to)::

    DATA_DIR/train/images/ID.png   101x101 seismic section (8-bit RGB with equal channels, or grayscale)
    DATA_DIR/train/masks/ID.png    its salt mask (16-bit 0/65535 or 8-bit 0/255)
    DATA_DIR/train.csv             id,rle_mask   (optional; checked against the masks when present)
    DATA_DIR/depths.csv            id,z          (optional; depth of each section)
    DATA_DIR/test/images/ID.png    unlabelled sections

Nothing here ever writes to or deletes from the data folder.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm  # plain text bars: readable in papermill logs, no ipywidgets needed

from helpers import NATIVE_SIZE
from helpers.errors import DataError
from helpers.rle import rle_decode

LAYOUT_HINT = (
    "expected Kaggle's TGS layout: train/images/ID.png, train/masks/ID.png, train.csv, depths.csv, "
    "test/images/ID.png"
)
DATA_DIR_ENV = "SALT_DATA_DIR"
_MAX_LISTED = 5  # how many offending ids an error message lists before summarising
_T = TypeVar("_T")


@dataclass
class SaltDataset:
    """Images (N, 101, 101) in [0, 1], masks in {0, 1} or None, and depths (NaN where unknown)."""

    ids: list[str]
    images: np.ndarray
    masks: np.ndarray | None
    depths: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ids)
        sizes = {"images": len(self.images), "depths": len(self.depths)}
        if self.masks is not None:
            sizes["masks"] = len(self.masks)
        wrong = {name: size for name, size in sizes.items() if size != n}
        if wrong:
            raise ValueError(f"SaltDataset has {n} ids but these lengths differ: {wrong}")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Sequence[int] | np.ndarray) -> SaltDataset:
        """A new data set holding only the given positions (integer indices or a boolean mask)."""
        positions = np.arange(len(self))[np.asarray(indices)]
        return SaltDataset(
            ids=[self.ids[i] for i in positions],
            images=self.images[positions],
            masks=None if self.masks is None else self.masks[positions],
            depths=self.depths[positions],
        )


# ----------------------------------------------------------------------------- locating the data


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """The data folder to use: the given one, else $SALT_DATA_DIR, else the built-in synthetic set."""
    if data_dir is not None and str(data_dir) != "":
        return _existing_data_dir(Path(data_dir).expanduser(), "the data folder")
    from_env = os.environ.get(DATA_DIR_ENV, "")
    if from_env:
        return _existing_data_dir(Path(from_env).expanduser(), f"${DATA_DIR_ENV}")
    from helpers.synthetic import builtin_data_dir  # generated on first use; imported lazily

    return Path(builtin_data_dir())


def _existing_data_dir(path: Path, origin: str) -> Path:
    """Check that a folder exists and holds train/images or test/images."""
    if not path.is_dir():
        raise DataError(f"{origin} {path} does not exist or is not a folder; {LAYOUT_HINT}")
    if not (path / "train" / "images").is_dir() and not (path / "test" / "images").is_dir():
        raise DataError(f"{origin} {path} has neither train/images nor test/images; {LAYOUT_HINT}")
    return path


# ----------------------------------------------------------------------------- loading


def load_train(data_dir: str | Path, n_images: int = 0, progress: bool = True) -> SaltDataset:
    """Load labelled pairs (all when n_images == 0, else the first n_images ids in sorted order)."""
    data_dir = _require_dir(Path(data_dir), "data folder")
    image_dir = _require_dir(data_dir / "train" / "images", "training image folder")
    mask_dir = _require_dir(data_dir / "train" / "masks", "training mask folder")
    image_ids, mask_ids = _png_ids(image_dir), _png_ids(mask_dir)
    _check_same_ids(image_ids, f"images in {image_dir}", mask_ids, f"masks in {mask_dir}")
    ids = _first_n(image_ids, n_images)
    pairs = _load_parallel(
        lambda id_: (read_image(image_dir / f"{id_}.png"), read_mask(mask_dir / f"{id_}.png")),
        ids,
        "train images",
        progress,
    )
    images = np.stack([image for image, _ in pairs])
    masks = np.stack([mask for _, mask in pairs])
    if (data_dir / "train.csv").is_file():
        _check_rle_csv(data_dir / "train.csv", image_ids, ids, masks)
    return SaltDataset(ids=ids, images=images, masks=masks, depths=_depths_for(data_dir, ids))


def load_test(path: str | Path, n_images: int = 0, progress: bool = True) -> SaltDataset:
    """Load unlabelled images from a data folder's test/images, or from a folder of PNGs directly."""
    path = _require_dir(Path(path), "test data folder")
    is_data_dir = (path / "test" / "images").is_dir()
    image_dir = path / "test" / "images" if is_data_dir else path
    ids = _first_n(_png_ids(image_dir), n_images)
    images = _load_parallel(lambda id_: read_image(image_dir / f"{id_}.png"), ids, "test images", progress)
    depths = _depths_for(path, ids) if is_data_dir else np.full(len(ids), np.nan, np.float32)
    return SaltDataset(ids=ids, images=np.stack(images), masks=None, depths=depths)


def read_image(path: Path) -> np.ndarray:
    """Read one seismic section as float32 (101, 101) in [0, 1] (8-bit RGB with equal channels, or gray)."""
    pixels = _decode_png(path)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        if not (np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])):
            raise DataError(f"{path}: RGB image with different R, G and B channels; expected a grayscale section")
        pixels = pixels[..., 0]
    _check_native_2d(path, pixels, "image")
    return (pixels.astype(np.float32) / _full_scale(path, pixels)).astype(np.float32)


def read_mask(path: Path) -> np.ndarray:
    """Read one salt mask as float32 (101, 101) in {0, 1} (any one non-zero value marks salt)."""
    pixels = _decode_png(path)
    _check_native_2d(path, pixels, "mask")
    salt = pixels[pixels != 0]
    if salt.size and np.any(salt != salt[0]):
        shown = ", ".join(str(v) for v in np.unique(pixels)[:_MAX_LISTED])
        raise DataError(f"{path}: mask is not binary (values {shown}, ...); expected 0 and one salt value")
    return (pixels > 0).astype(np.float32)


def _decode_png(path: Path) -> np.ndarray:
    """Decode an image file into a NumPy array, naming the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            # A palette PNG stores indices, not gray levels: expand it so the channel check sees the colours.
            return np.asarray(image.convert("RGB") if image.mode == "P" else image)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: cannot be decoded as an image ({error})") from error


def _check_native_2d(path: Path, pixels: np.ndarray, what: str) -> None:
    """Require a single-channel NATIVE_SIZE x NATIVE_SIZE array."""
    if pixels.ndim != 2:
        raise DataError(f"{path}: {what} has shape {pixels.shape}; expected one grayscale channel")
    if pixels.shape != (NATIVE_SIZE, NATIVE_SIZE):
        height, width = pixels.shape
        raise DataError(f"{path}: {what} is {height}x{width}; expected {NATIVE_SIZE}x{NATIVE_SIZE} (TGS size)")


def _full_scale(path: Path, pixels: np.ndarray) -> float:
    """The value of a white pixel for this file's bit depth (8 or 16 bits)."""
    if pixels.dtype == np.uint8:
        return 255.0
    if pixels.dtype in (np.uint16, np.int32) and pixels.min() >= 0 and pixels.max() <= 65535:
        return 65535.0
    raise DataError(f"{path}: unsupported pixel type {pixels.dtype}; expected 8- or 16-bit grayscale")


def _load_parallel(read: Callable[[str], _T], ids: list[str], label: str, progress: bool) -> list[_T]:
    """Apply read to every id on a few threads (PNG decoding releases the GIL), with a progress bar."""
    workers = min(8, (os.cpu_count() or 1) + 2)
    # A bar redraws itself with carriage returns: fine on a terminal, a smear in a log file or a pipe.
    bar = progress and sys.stderr.isatty()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        loaded = list(tqdm(pool.map(read, ids), total=len(ids), desc=label, disable=not bar, leave=False))
    if progress and not bar:
        print(f"{label}: {len(loaded)} loaded", file=sys.stderr, flush=True)
    return loaded


# ----------------------------------------------------------------------------- folder checks


def _require_dir(path: Path, what: str) -> Path:
    """Return path when it is a folder, else raise naming it and the expected layout."""
    if not path.is_dir():
        raise DataError(f"{what} {path} does not exist or is not a folder; {LAYOUT_HINT}")
    return path


def _png_ids(folder: Path) -> list[str]:
    """Sorted ids (file stems) of the PNG files in a folder; an empty folder is an error."""
    ids = sorted(path.stem for path in folder.iterdir() if path.suffix.lower() == ".png" and path.is_file())
    if not ids:
        raise DataError(f"{folder} contains no .png files; {LAYOUT_HINT}")
    return ids


def _first_n(ids: list[str], n_images: int) -> list[str]:
    """All ids when n_images == 0, else the first n_images (fewer if fewer exist)."""
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 0:
        raise ValueError(f"n_images must be an integer >= 0 (0 means all), got {n_images!r}")
    return ids if n_images == 0 else ids[: int(n_images)]


def _check_same_ids(left: Sequence[str], left_name: str, right: Sequence[str], right_name: str) -> None:
    """Raise listing the ids that one collection has and the other lacks."""
    only_left, only_right = sorted(set(left) - set(right)), sorted(set(right) - set(left))
    problems = []
    if only_left:
        problems.append(f"{len(only_left)} {left_name} have no counterpart in {right_name}: {_some(only_left)}")
    if only_right:
        problems.append(f"{len(only_right)} {right_name} have no counterpart in {left_name}: {_some(only_right)}")
    if problems:
        raise DataError("; ".join(problems))


def _some(ids: Sequence[str]) -> str:
    """A short listing of ids for an error message."""
    shown = ", ".join(ids[:_MAX_LISTED])
    return shown + (f", ... ({len(ids) - _MAX_LISTED} more)" if len(ids) > _MAX_LISTED else "")


# ----------------------------------------------------------------------------- CSV files


def read_rle_csv(path: str | Path) -> dict[str, str]:
    """Read an `id,rle_mask` file (train.csv or a submission) into {id: run-length string}."""
    return dict(_read_csv_pairs(Path(path), ("id", "rle_mask")))


def read_depths(data_dir: str | Path) -> dict[str, float]:
    """Read DATA_DIR/depths.csv (`id,z`) into {id: depth}."""
    path = Path(data_dir) / "depths.csv"
    depths = {}
    for line_number, (id_, text) in _numbered_csv_pairs(path, ("id", "z")):
        try:
            depths[id_] = float(text)
        except ValueError:
            raise DataError(f"{path}, line {line_number}: depth {text!r} for id {id_!r} is not a number") from None
        if not math.isfinite(depths[id_]):
            raise DataError(f"{path}, line {line_number}: depth {text!r} for id {id_!r} is not finite")
    return depths


def _read_csv_pairs(path: Path, header: tuple[str, str]) -> list[tuple[str, str]]:
    """The (key, value) rows of a two-column CSV with the given header."""
    return [pair for _, pair in _numbered_csv_pairs(path, header)]


def _numbered_csv_pairs(path: Path, header: tuple[str, str]) -> list[tuple[int, tuple[str, str]]]:
    """(line number, (key, value)) for each row of a two-column CSV; checks header, width and duplicates."""
    if not path.is_file():
        raise DataError(f"{path} does not exist; expected a CSV file with header {','.join(header)}")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or tuple(cell.strip() for cell in rows[0]) != header:
        found = ",".join(rows[0]) if rows else "an empty file"
        raise DataError(f"{path}: header is {found!r}; expected {','.join(header)!r}")
    pairs, seen = [], set()
    for line_number, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # a blank line, e.g. at the end of the file
        if len(row) != 2 or not row[0].strip():
            raise DataError(f"{path}, line {line_number}: expected 2 fields ({','.join(header)}), got {row!r}")
        key = row[0].strip()
        if key in seen:
            raise DataError(f"{path}, line {line_number}: id {key!r} appears more than once")
        seen.add(key)
        pairs.append((line_number, (key, row[1].strip())))
    return pairs


def _check_rle_csv(path: Path, all_ids: list[str], loaded_ids: list[str], masks: np.ndarray) -> None:
    """Require train.csv to list exactly the mask ids and to decode to the loaded masks."""
    rles = read_rle_csv(path)
    _check_same_ids(all_ids, "mask files", list(rles), f"rows of {path}")
    for id_, mask in zip(loaded_ids, masks):
        try:
            decoded = rle_decode(rles[id_], shape=mask.shape)
        except ValueError as error:
            raise DataError(f"{path}: rle_mask of id {id_!r} is malformed: {error}") from None
        if not np.array_equal(decoded, mask):
            differing = int(np.sum(decoded != mask))
            raise DataError(f"{path}: rle_mask of id {id_!r} disagrees with its mask file in {differing} pixels")


def _depths_for(data_dir: Path, ids: list[str]) -> np.ndarray:
    """Depth of each id from depths.csv, NaN where the file or the id is missing."""
    depths = read_depths(data_dir) if (data_dir / "depths.csv").is_file() else {}
    return np.array([depths.get(id_, np.nan) for id_ in ids], dtype=np.float32)


# ----------------------------------------------------------------------------- coverage and splitting


def salt_coverage(masks: np.ndarray) -> np.ndarray:
    """Fraction of salt pixels in each mask of a (N, H, W) or (N, H, W, 1) batch, as float32 (N,)."""
    masks = np.asarray(masks)
    if masks.ndim not in (3, 4):
        raise ValueError(f"salt_coverage needs masks of shape (N, H, W) or (N, H, W, 1), got {masks.shape}")
    return (masks > 0.5).reshape(len(masks), -1).mean(axis=1).astype(np.float32)


def coverage_class(coverage: np.ndarray) -> np.ndarray:
    """Coverage bucket ceil(10 * coverage): 0 for no salt, 1..10 for tenths of the image."""
    coverage = np.asarray(coverage, dtype=np.float64)
    if np.any(~np.isfinite(coverage)) or np.any((coverage < 0) | (coverage > 1)):
        raise ValueError("coverage_class needs coverage values in [0, 1]")
    # Rounding first keeps exact tenths (0.3 * 10 = 3.0000000000000004) in their own class.
    return np.ceil(np.round(coverage * 10, 9)).astype(np.int64)


def stratified_split(
    coverage: np.ndarray, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation index split with every coverage class represented in both parts."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    classes = coverage_class(np.asarray(coverage).reshape(-1))
    rng = np.random.default_rng(seed)
    val_parts = []
    for label in np.unique(classes):
        members = rng.permutation(np.flatnonzero(classes == label))
        # A class with >= 2 members gives at least one to validation and keeps at least one for training.
        n_val = min(max(round(len(members) * val_fraction), 1), len(members) - 1)
        val_parts.append(members[:n_val])
    val_idx = np.sort(np.concatenate(val_parts)) if val_parts else np.array([], np.int64)
    train_idx = np.setdiff1d(np.arange(len(classes)), val_idx)
    return train_idx.astype(np.int64), val_idx.astype(np.int64)
