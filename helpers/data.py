"""Reading the TGS salt data from a folder in Kaggle's layout.

Layout (what Kaggle's download unpacks to)::

    DATA_DIR/train/images/ID.png   101x101 seismic section (8-bit RGB with equal channels, or 8/16-bit gray)
    DATA_DIR/train/masks/ID.png    its salt mask (16-bit 0/65535 or 8-bit 0/255)
    DATA_DIR/train.csv             id,rle_mask   (optional; checked against the masks when present)
    DATA_DIR/depths.csv            id,z          (optional; depth of each section)
    DATA_DIR/test/images/ID.png    unlabelled sections

The extension may be in any case (ID.PNG); the CSV files are read by ``helpers.competition_csv`` (UTF-8).
Every problem is one DataError that names the file (and line) at fault. Nothing here ever writes to or
deletes from the data folder. Coverage and the stratified split are in ``helpers.coverage``; they and
``read_rle_csv`` can be imported from here too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm  # plain text bars: readable in papermill logs, no ipywidgets needed

from helpers import NATIVE_SIZE
from helpers.competition_csv import read_depths, read_rle_csv
from helpers.config import is_count

# Imported from here by the notebooks and helpers.training; they live in helpers.coverage.
from helpers.coverage import coverage_class, salt_coverage, stratified_split  # noqa: F401
from helpers.errors import DataError
from helpers.rle import rle_decode

LAYOUT_HINT = (
    "expected Kaggle's TGS layout: train/images/ID.png, train/masks/ID.png, train.csv, depths.csv, "
    "test/images/ID.png"
)
DATA_DIR_ENV = "SALT_DATA_DIR"
SYNTHETIC_MARKER = "SYNTHETIC.json"  # helpers.synthetic.MARKER_NAME, without importing that module
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
    if not _has_layout(path):
        raise DataError(f"{origin} {path} has neither train/images nor test/images; {LAYOUT_HINT}{_suggest(path)}")
    return path


def _has_layout(path: Path) -> bool:
    """Whether a folder holds train/images or test/images."""
    return (path / "train" / "images").is_dir() or (path / "test" / "images").is_dir()


def _suggest(path: Path) -> str:
    """'; did you mean ...?' naming the data folders just above or below path (e.g. the cache's set), if any."""
    try:
        below = sorted(child for child in path.iterdir() if child.is_dir() and _has_layout(child))
    except OSError:
        below = []
    above = [parent for parent in list(path.parents)[:2] if _has_layout(parent)]
    found = [str(folder) for folder in (above[:1] + below)[:3]]
    return f"; did you mean {' or '.join(found)}?" if found else ""


# ----------------------------------------------------------------------------- loading


def load_train(data_dir: str | Path, n_images: int = 0, progress: bool = True) -> SaltDataset:
    """Load labelled pairs (all when n_images == 0, else the first n_images ids in sorted order)."""
    data_dir = _require_dir(Path(data_dir), "data folder")
    with _synthetic_hint(data_dir):
        image_dir = _require_dir(data_dir / "train" / "images", "training image folder")
        mask_dir = _require_dir(data_dir / "train" / "masks", "training mask folder")
        image_files, mask_files = _png_files(image_dir), _png_files(mask_dir)
        image_ids = list(image_files)
        _check_same_ids(image_ids, f"images in {image_dir}", list(mask_files), f"masks in {mask_dir}")
        ids = _first_n(image_ids, n_images)
        pairs = _load_parallel(
            lambda id_: (read_image(image_files[id_]), read_mask(mask_files[id_])), ids, "train images", progress
        )
        images = np.stack([image for image, _ in pairs])
        masks = np.stack([mask for _, mask in pairs])
        if (data_dir / "train.csv").is_file():
            _check_rle_csv(data_dir / "train.csv", image_ids, ids, masks)
        return SaltDataset(ids=ids, images=images, masks=masks, depths=_depths_for(data_dir, ids))


def load_test(path: str | Path, n_images: int = 0, progress: bool = True) -> SaltDataset:
    """Load unlabelled images from a data folder's test/images, or from a folder of PNGs directly."""
    path = _require_dir(Path(path), "test data folder")
    with _synthetic_hint(path):
        is_data_dir = (path / "test" / "images").is_dir()
        files = _png_files(path / "test" / "images" if is_data_dir else path)
        ids = _first_n(list(files), n_images)
        images = _load_parallel(lambda id_: read_image(files[id_]), ids, "test images", progress)
        depths = _depths_for(path, ids) if is_data_dir else np.full(len(ids), np.nan, np.float32)
        return SaltDataset(ids=ids, images=np.stack(images), masks=None, depths=depths)


@contextmanager
def _synthetic_hint(data_dir: Path) -> Iterator[None]:
    """Add 'delete it to have it generated afresh' to a data error in a generated synthetic set."""
    try:
        yield
    except DataError as error:
        if not (data_dir / SYNTHETIC_MARKER).is_file():
            raise
        raise DataError(
            f"{error}; {data_dir} is a generated synthetic data set (it holds {SYNTHETIC_MARKER}): if it was changed "
            "after it was written, delete that folder and run again to have it generated afresh"
        ) from error


def read_image(path: Path) -> np.ndarray:
    """Read one seismic section as float32 (101, 101) in [0, 1] (8-bit RGB with equal channels, or gray).

    16-bit files are read on their 16-bit scale (0..65535), except one whose values all lie in 0..255:
    that is 8-bit data in a 16-bit file as often as a near-black 16-bit section, so it is refused.
    """
    pixels, bits = _decode_png(path)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        if not (np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])):
            raise DataError(f"{path}: RGB image with different R, G and B channels; expected a grayscale section")
        pixels = pixels[..., 0]
    _check_native_2d(path, pixels, "image")
    if bits == 16:
        _refuse_8_bit_values_in_16_bits(path, pixels)
    return (pixels.astype(np.float32) / _full_scale(path, pixels)).astype(np.float32)


def read_mask(path: Path) -> np.ndarray:
    """Read one salt mask as float32 (101, 101) in {0, 1} (any one non-zero value marks salt; 8 or 16 bits)."""
    pixels, _ = _decode_png(path)
    _check_native_2d(path, pixels, "mask")
    salt = pixels[pixels != 0]
    if salt.size and np.any(salt != salt[0]):
        shown = ", ".join(str(v) for v in np.unique(pixels)[:_MAX_LISTED])
        raise DataError(f"{path}: mask is not binary (values {shown}, ...); expected 0 and one salt value")
    return (pixels > 0).astype(np.float32)


def _decode_png(path: Path) -> tuple[np.ndarray, int]:
    """Decode an image file into a NumPy array and its bits per sample, naming the file when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            bits = _png_bit_depth(handle.read(26))
            handle.seek(0)
            with Image.open(handle) as image:
                # A palette PNG stores indices, not gray levels: expand it so the channel check sees the colours.
                pixels = np.asarray(image.convert("RGB") if image.mode == "P" else image)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: cannot be decoded as an image ({error})") from error
    return pixels, bits or pixels.dtype.itemsize * 8


def _png_bit_depth(header: bytes) -> int | None:
    """Bits per sample from a PNG's IHDR chunk (None when the bytes are not a PNG header)."""
    if len(header) < 26 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        return None
    return header[24]


def _refuse_8_bit_values_in_16_bits(path: Path, pixels: np.ndarray) -> None:
    """Raise when a 16-bit section holds only values 0..255, which have no unambiguous meaning."""
    if pixels.dtype == np.uint8:
        # Pillow keeps only the high byte of each 16-bit colour sample: all zero means every value was 0..255.
        ambiguous, values = not pixels.any(), "all lie in 0..255 (or are all 0)"
    else:
        top = int(pixels.max())
        ambiguous, values = 0 < top <= 255, f"all lie in 0..255 (largest {top})"
    if ambiguous:
        raise DataError(
            f"{path}: 16-bit image whose values {values}: on the 16-bit scale that is a near-black section, but it "
            "is more likely 8-bit data saved in a 16-bit file, and nothing in the file says which; re-save it as an "
            "8-bit PNG (values 0..255 unchanged) or as a real 16-bit PNG (values multiplied by 257)"
        )


def _check_native_2d(path: Path, pixels: np.ndarray, what: str) -> None:
    """Require a single-channel NATIVE_SIZE x NATIVE_SIZE array."""
    if pixels.ndim != 2:
        raise DataError(f"{path}: {what} has shape {pixels.shape}; expected one grayscale channel")
    if pixels.shape != (NATIVE_SIZE, NATIVE_SIZE):
        height, width = pixels.shape
        raise DataError(f"{path}: {what} is {height}x{width}; expected {NATIVE_SIZE}x{NATIVE_SIZE} (TGS size)")


def _full_scale(path: Path, pixels: np.ndarray) -> float:
    """The value of a white pixel for this array's type (8 or 16 bits)."""
    if pixels.dtype == np.uint8:
        return 255.0
    if pixels.dtype in (np.uint16, np.int32) and pixels.min() >= 0 and pixels.max() <= 65535:
        return 65535.0
    raise DataError(f"{path}: unsupported pixel type {pixels.dtype}; expected 8- or 16-bit grayscale")


def _load_parallel(read: Callable[[str], _T], ids: list[str], label: str, progress: bool) -> list[_T]:
    """Apply read to every id on a few threads (PNG decoding releases the GIL), with a progress bar.

    Every file is tried, so that one error names all the unreadable ones, not just the first.
    """
    workers = min(8, (os.cpu_count() or 1) + 2)
    # A bar redraws itself with carriage returns: fine on a terminal, a smear in a log file or a pipe.
    bar = progress and sys.stderr.isatty()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(_capture_data_error(read), ids), total=len(ids), desc=label,
                            disable=not bar, leave=False))
    errors = [result for result in results if isinstance(result, DataError)]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        # The others without their advice (what follows the first ';'), which the first one already gives.
        others = "; ".join(str(error).split(";")[0] for error in errors[1:_MAX_LISTED])
        more = f"; ... ({len(errors) - _MAX_LISTED} more)" if len(errors) > _MAX_LISTED else ""
        raise DataError(f"{len(errors)} of the {len(ids)} {label} cannot be used: {errors[0]}; also {others}{more}")
    if progress and not bar:
        print(f"{label}: {len(results)} loaded", file=sys.stderr, flush=True)
    return results  # type: ignore[return-value]


def _capture_data_error(read: Callable[[str], _T]) -> Callable[[str], _T | DataError]:
    """read, returning a DataError instead of raising it."""

    def wrapped(id_: str) -> _T | DataError:
        try:
            return read(id_)
        except DataError as error:
            return error

    return wrapped


# ----------------------------------------------------------------------------- folder checks


def _require_dir(path: Path, what: str) -> Path:
    """Return path when it is a folder, else raise naming it and the expected layout."""
    if not path.is_dir():
        raise DataError(f"{what} {path} does not exist or is not a folder; {LAYOUT_HINT}")
    return path


def _png_files(folder: Path) -> dict[str, Path]:
    """The PNG files of a folder by id (file stem; any case of .png), sorted by id; an empty folder is an error."""
    files: dict[str, Path] = {}
    clashes: list[str] = []
    try:
        paths = sorted(folder.iterdir())
    except OSError as error:
        raise DataError(f"{folder}: cannot be listed ({error.strerror or error}); check its permissions") from None
    for path in paths:
        if path.suffix.lower() != ".png" or not path.is_file():
            continue
        if path.stem in files:
            clashes.append(f"{files[path.stem].name} and {path.name}")
        files[path.stem] = path
    if clashes:
        raise DataError(
            f"{folder}: {len(clashes)} id(s) have two files that differ only in the case of .png: {_some(clashes)}; "
            "keep one file per id (rename or move the other)"
        )
    if not files:
        raise DataError(f"{folder} contains no .png files; {LAYOUT_HINT}")
    return dict(sorted(files.items()))


def _first_n(ids: list[str], n_images: int) -> list[str]:
    """All ids when n_images == 0, else the first n_images (fewer if fewer exist)."""
    if not is_count(n_images):
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


# ----------------------------------------------------------------------------- checks against the CSV files


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


if __name__ == "__main__":
    # python -m helpers.data download DEST [--from-zip FILE]: the real competition data (helpers/download.py)
    from helpers.download import main as download_main

    sys.exit(download_main())
