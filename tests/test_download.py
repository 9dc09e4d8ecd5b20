"""The real data in one command: unpack and check the competition zip; clear errors, nothing half-written.

The zips are built from a small fake set in the layout of Kaggle's download (train.zip and test.zip inside
the competition's zip, next to the CSV files); no test touches the network or imports kaggle.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import pytest

from helpers import download
from helpers.download import DownloadError

N_TRAIN, N_TEST = 6, 3
COUNTS = (N_TRAIN, N_TEST)


@pytest.fixture(scope="module")
def fake_set(tmp_path_factory) -> Path:
    from helpers.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("fake") / "salt", n_train=N_TRAIN, n_test=N_TEST,
                                   seed=1, progress=False, workers=1)


def _inner_zip(folder: Path, broken: int = -1) -> bytes:
    """A zip of folder's images/ (and masks/), as Kaggle's train.zip and test.zip hold them.

    broken: the index of a PNG whose bytes are replaced by garbage (-1: none).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as inner:
        for index, path in enumerate(sorted(folder.rglob("*.png"))):
            data = b"not a png" if index == broken else path.read_bytes()
            inner.writestr(path.relative_to(folder).as_posix(), data)
    return buffer.getvalue()


def kaggle_zip(fake_set: Path, out: Path, drop: str = "", extra: dict[str, bytes] | None = None) -> Path:
    """The competition's zip as Kaggle serves it, made from the fake set (drop leaves one member out)."""
    members = {"train.zip": _inner_zip(fake_set / "train"), "test.zip": _inner_zip(fake_set / "test"),
               "train.csv": (fake_set / "train.csv").read_bytes(), "depths.csv": (fake_set / "depths.csv").read_bytes(),
               "sample_submission.csv": b"id,rle_mask\n"}
    members = {**{name: data for name, data in members.items() if name != drop}, **(extra or {})}
    with zipfile.ZipFile(out, "w") as outer:
        for name, data in members.items():
            outer.writestr(name, data)
    return out


def competition_data_zip(fake_set: Path, out: Path) -> Path:
    """The other form of Kaggle's download: competition_data.zip (all under competition_data/), depths.csv,
    and flamingo.zip, which is not part of the data (here: a decoy with images/ and masks/)."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as inner:
        for path in sorted(p for p in fake_set.rglob("*") if p.is_file() and p.name != "depths.csv"):
            inner.write(path, f"competition_data/{path.relative_to(fake_set).as_posix()}")
    with zipfile.ZipFile(out, "w") as outer:
        outer.writestr("competition_data.zip", data.getvalue())
        outer.writestr("depths.csv", (fake_set / "depths.csv").read_bytes())
        outer.writestr("flamingo.zip", _inner_zip(fake_set / "train", broken=0))
    return out


def leftovers(parent: Path) -> list[str]:
    """Staging folders left beside the destination."""
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name)


def test_from_zip_unpacks_into_the_layout_the_course_reads(fake_set, tmp_path, capsys):
    from helpers.data import load_test, load_train

    archive = kaggle_zip(fake_set, tmp_path / "tgs-salt-identification-challenge.zip")
    dest = tmp_path / "data" / "tgs-salt"
    assert download.main(["download", str(dest), "--from-zip", str(archive)], expected_counts=COUNTS) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["depths.csv", "sample_submission.csv", "test", "train",
                                                      "train.csv"]
    train, test = load_train(dest, progress=False), load_test(dest, progress=False)
    assert len(train) == N_TRAIN and len(test) == N_TEST
    assert (train.images == load_train(fake_set, progress=False).images).all()
    assert leftovers(dest.parent) == [] and archive.exists()  # the user's zip is left alone
    assert f"export SALT_DATA_DIR={dest}" in capsys.readouterr().out


@pytest.mark.parametrize("form", ["train_and_test_zips", "competition_data_zip"])
def test_both_forms_of_kaggles_zip_unpack_alike(fake_set, tmp_path, form):
    from helpers.data import load_train

    archive = tmp_path / "tgs.zip"
    if form == "train_and_test_zips":  # with the decoy and the duplicate beside them
        kaggle_zip(fake_set, archive, extra={"flamingo.zip": _inner_zip(fake_set / "train", broken=0),
                                             "competition_data.zip": b"not read when train.zip and test.zip exist"})
    else:
        competition_data_zip(fake_set, archive)
    dest = tmp_path / "tgs"
    assert download.main(["download", str(dest), "--from-zip", str(archive)], expected_counts=COUNTS) == 0
    assert {"train", "test", "train.csv", "depths.csv"} <= {p.name for p in dest.iterdir()}
    assert load_train(dest, progress=False).ids == load_train(fake_set, progress=False).ids
    assert leftovers(tmp_path) == []


def test_a_download_goes_through_the_same_unpacking(fake_set, tmp_path):
    def fake_fetch(folder: Path) -> Path:
        return kaggle_zip(fake_set, folder / "tgs-salt-identification-challenge.zip")

    dest = tmp_path / "tgs"
    assert download.main(["download", str(dest)], fetch=fake_fetch, expected_counts=COUNTS) == 0
    assert len(list((dest / "train" / "masks").glob("*.png"))) == N_TRAIN
    assert leftovers(tmp_path) == []


def test_the_expected_counts_are_the_competitions():
    assert download.EXPECTED_COUNTS == (4000, 18000)


@pytest.mark.parametrize("problem", ["counts", "missing_test", "bad_png", "bad_inner_zip", "not_a_zip",
                                     "fetch_fails"])
def test_a_failure_says_what_to_do_and_leaves_nothing(fake_set, tmp_path, capsys, problem):
    dest = tmp_path / "tgs"
    archive = tmp_path / "competition.zip"
    fetch = download.kaggle_fetch
    counts = COUNTS
    if problem == "counts":
        kaggle_zip(fake_set, archive)
        counts = download.EXPECTED_COUNTS
    elif problem == "missing_test":
        kaggle_zip(fake_set, archive, drop="test.zip")
    elif problem == "bad_png":
        kaggle_zip(fake_set, archive, drop="train.zip", extra={"train.zip": _inner_zip(fake_set / "train", broken=0)})
    elif problem == "bad_inner_zip":
        kaggle_zip(fake_set, archive, drop="train.zip", extra={"train.zip": _inner_zip(fake_set / "train")[:-300]})
    elif problem == "not_a_zip":
        archive.write_text("not a zip")
    args = ["download", str(dest)] + ([] if problem == "fetch_fails" else ["--from-zip", str(archive)])
    if problem == "fetch_fails":
        def fetch(folder: Path) -> Path:
            (folder / "partial.zip").write_bytes(b"half")
            raise DownloadError("Kaggle refused the download (403): accept the competition's rules first")

    assert download.main(args, fetch=fetch, expected_counts=counts) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err  # one clear message
    assert not dest.exists() and leftovers(tmp_path) == []
    expected = {"counts": "expected 4000 labelled pairs and 18000 test sections, found 6 and 3",
                "missing_test": "lack test/images", "bad_png": "do not read as the course expects",
                "bad_inner_zip": "not a readable zip", "not_a_zip": "not a readable zip",
                "fetch_fails": "accept the competition's rules"}[problem]
    assert expected in err


def test_an_existing_folder_is_refused_not_overwritten(fake_set, tmp_path, capsys):
    archive = kaggle_zip(fake_set, tmp_path / "c.zip")
    dest = tmp_path / "tgs"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    assert download.main(["download", str(dest), "--from-zip", str(archive)], expected_counts=COUNTS) == 1
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in dest.iterdir()] == ["mine.txt"] and leftovers(tmp_path) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert download.main(["download", str(empty), "--from-zip", str(archive)], expected_counts=COUNTS) == 0


def test_a_zip_cannot_write_outside_its_folder(fake_set, tmp_path, capsys):
    archive = kaggle_zip(fake_set, tmp_path / "evil.zip", extra={"../../escaped.txt": b"x"})
    assert download.main(["download", str(tmp_path / "tgs"), "--from-zip", str(archive)],
                         expected_counts=COUNTS) == 1
    assert "outside its folder" in capsys.readouterr().err
    assert not (tmp_path.parent / "escaped.txt").exists() and leftovers(tmp_path) == []


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status


class _HTTPError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"{status} Client Error")
        self.response = _Response(status)


class ConnectionError(Exception):  # noqa: A001  (named as requests names it)
    pass


@pytest.mark.parametrize("error, expected", [
    (_HTTPError(403), "accept the competition's rules"),
    (_HTTPError(401), "did not accept your credentials"),
    (ConnectionError("Failed to resolve 'www.kaggle.com'"), "could not be reached"),
])
def test_kaggle_errors_are_explained(error, expected):
    message = download.explain_kaggle_error(error)
    assert expected in message and "\n" not in message


def test_no_credentials_is_one_clear_message(monkeypatch, tmp_path, capsys):
    if importlib.util.find_spec("kaggle") is None:  # not importorskip: importing kaggle prints its own help
        pytest.skip("the kaggle package is not installed (pip install kaggle)")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / ".kaggle"))
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    dest = tmp_path / "tgs"
    assert download.main(["download", str(dest)]) == 1
    captured = capsys.readouterr()
    assert "no Kaggle credentials found" in captured.err and captured.err.count("\n") == 1
    assert "kaggle auth login" not in captured.out  # the package's own help is not printed as well
    assert not dest.exists() and leftovers(tmp_path) == []


def test_a_folder_that_cannot_be_written_is_one_message(fake_set, tmp_path, capsys, monkeypatch):
    archive = kaggle_zip(fake_set, tmp_path / "c.zip")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(download.shutil, "move", full_disk)
    assert download.main(["download", str(tmp_path / "tgs"), "--from-zip", str(archive)], expected_counts=COUNTS) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "tgs").exists() and leftovers(tmp_path) == []


def test_python_m_helpers_data_download_runs_this_command(tmp_path):
    import subprocess
    import sys

    if 'if __name__ == "__main__"' not in (Path(download.__file__).parent / "data.py").read_text():
        pytest.skip("helpers/data.py does not call helpers.download.main yet")
    dest = tmp_path / "tgs"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    result = subprocess.run([sys.executable, "-m", "helpers.data", "download", str(dest)], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=120,
                            cwd=Path(download.__file__).resolve().parents[1])
    assert result.returncode == 1 and "already exists and is not empty" in result.stderr
