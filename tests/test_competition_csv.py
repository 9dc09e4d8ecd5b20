"""The competition's CSV files: the one reader of id,rle_mask files, depths.csv, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.competition_csv import (
    read_csv_rows,
    read_depths,
    read_rle_csv,
    read_rle_rows,
)
from helpers.errors import DataError


def test_rle_rows_keep_their_line_numbers_and_skip_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "submission.csv"
    path.write_text("id,rle_mask\na,1 2\n\n b ,\nc,3 4\n")
    assert read_rle_rows(path) == [(2, "a", "1 2"), (4, "b", ""), (5, "c", "3 4")]
    assert read_rle_csv(path) == {"a": "1 2", "b": "", "c": "3 4"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,rle_mask\na,1 2\na,3 4\n", r"line 3: id 'a' appears more than once"),
        ("id,rle_mask\na,1 2,3\n", r"line 2: expected 2 fields \(id,rle_mask\)"),
        ("id,rle_mask\n,1 2\n", r"line 2: expected 2 fields"),
        ("name,pixels\na,1 2\n", r"header is 'name,pixels'; expected 'id,rle_mask'"),
    ],
)
def test_a_broken_rle_file_names_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=r"broken\.csv(, |: )" + message):
        read_rle_csv(path)


def test_csv_that_is_not_csv_names_file_and_line(tmp_path: Path) -> None:
    tiny_dir = tmp_path
    (tiny_dir / "train").mkdir()
    path = tiny_dir / "depths.csv"
    path.write_bytes(b"id,z\nid000,100\nid001," + b"1" * 200_000 + b"\n")  # a field past the csv module's limit
    with pytest.raises(DataError, match=r"depths\.csv, line 3: not a readable CSV row"):
        read_depths(tiny_dir)
    with pytest.raises(DataError, match=r"train: cannot be read as a CSV file"):
        read_csv_rows(tiny_dir / "train")  # a folder
    with pytest.raises(DataError, match=r"nothing\.csv does not exist"):
        read_csv_rows(tiny_dir / "nothing.csv")


def test_csv_with_wrong_header(tmp_path: Path) -> None:
    tiny_dir = tmp_path
    (tiny_dir / "depths.csv").write_text("name,depth\nid000,1\n")
    with pytest.raises(DataError, match=r"depths\.csv: header is 'name,depth'; expected 'id,z'"):
        read_depths(tiny_dir)
    (tiny_dir / "train.csv").write_text("")
    with pytest.raises(DataError, match=r"train\.csv: header is 'an empty file'"):
        read_rle_csv(tiny_dir / "train.csv")
