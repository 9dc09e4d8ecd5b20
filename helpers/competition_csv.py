"""The competition's CSV files: train.csv and submissions (`id,rle_mask`), depths.csv (`id,z`).

One reader for each: UTF-8 only (a byte-order mark is allowed), the header checked, two fields per
row, every id once; every problem is one DataError naming the file, the line and, for a byte that
is not UTF-8, its column. ``read_rle_rows`` is the one reader of `id,rle_mask` files, used for
train.csv (``helpers.data``) and for submissions (``helpers.predict.read_submission``).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from pathlib import Path

from helpers.errors import DataError

RLE_HEADER = ("id", "rle_mask")
DEPTHS_HEADER = ("id", "z")


def read_rle_csv(path: str | Path) -> dict[str, str]:
    """Read an `id,rle_mask` file (train.csv or a submission) into {id: run-length string}."""
    return {id_: rle for _, id_, rle in read_rle_rows(path)}


def read_rle_rows(path: str | Path) -> list[tuple[int, str, str]]:
    """(line number, id, run-length string) of each row of an `id,rle_mask` file, in the file's order."""
    return [(line_number, id_, rle) for line_number, (id_, rle) in _numbered_csv_pairs(Path(path), RLE_HEADER)]


def read_depths(data_dir: str | Path) -> dict[str, float]:
    """Read DATA_DIR/depths.csv (`id,z`) into {id: depth}."""
    path = Path(data_dir) / "depths.csv"
    depths = {}
    for line_number, (id_, text) in _numbered_csv_pairs(path, DEPTHS_HEADER):
        try:
            depths[id_] = float(text)
        except ValueError:
            raise DataError(f"{path}, line {line_number}: depth {text!r} for id {id_!r} is not a number") from None
        if not math.isfinite(depths[id_]):
            raise DataError(f"{path}, line {line_number}: depth {text!r} for id {id_!r} is not finite")
    return depths


def read_csv_rows(path: str | Path) -> list[list[str]]:
    """All rows of a UTF-8 CSV file (a byte-order mark is allowed); DataError naming the file and line otherwise."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; expected a CSV file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read as a CSV file ({error.strerror or error})") from None
    raw = raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(
            f"{path}, line {line}, byte {column}: byte 0x{raw[error.start]:02x} is not UTF-8 text; the file must be "
            "UTF-8 (or plain ASCII) CSV: re-save it as UTF-8, or remove the stray character"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return list(reader)
    except csv.Error as error:
        raise DataError(f"{path}, line {reader.line_num}: not a readable CSV row ({error}); fix or remove it") from None


def _numbered_csv_pairs(path: Path, header: tuple[str, str]) -> list[tuple[int, tuple[str, str]]]:
    """(line number, (key, value)) for each row of a two-column CSV; checks header, width and duplicates."""
    if not path.exists():
        raise DataError(f"{path} does not exist; expected a CSV file with header {','.join(header)}")
    rows = read_csv_rows(path)
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
