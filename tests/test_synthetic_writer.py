"""Tests for helpers.synthetic_writer: Kaggle's layout, its marker, worker processes, refusals and failures."""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import io

from helpers import NATIVE_SIZE, synthetic_writer
from helpers.errors import DataError
from helpers.rle import rle_decode
from helpers.synthetic_sections import SyntheticSection
from helpers.synthetic_writer import write_synthetic_dataset

PROJECT_ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = 40, 8


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under folder, by relative path, with its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def _read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dictionaries."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic set written once for the layout tests."""
    out = tmp_path_factory.mktemp("written") / "salt"
    return write_synthetic_dataset(out, n_train=N_TRAIN, n_test=N_TEST, seed=0, progress=False)


def test_layout_has_every_file(small_set: Path) -> None:
    assert len(list((small_set / "train" / "images").glob("*.png"))) == N_TRAIN
    assert len(list((small_set / "train" / "masks").glob("*.png"))) == N_TRAIN
    assert len(list((small_set / "test" / "images").glob("*.png"))) == N_TEST
    marker = json.loads((small_set / "SYNTHETIC.json").read_text())
    assert marker == {"generator": "helpers.synthetic", "version": 1, "seed": 0, "n_train": N_TRAIN, "n_test": N_TEST}
    assert not [p for p in small_set.parent.iterdir() if ".partial-" in p.name]


def test_images_are_8_bit_rgb_with_equal_channels(small_set: Path) -> None:
    for path in sorted((small_set / "train" / "images").glob("*.png"))[:10]:
        with Image.open(path) as png:
            assert png.mode == "RGB" and png.size == (NATIVE_SIZE, NATIVE_SIZE)
        pixels = io.imread(path)
        assert pixels.dtype == np.uint8
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 0] == pixels[..., 2]).all()


def test_masks_are_16_bit_salt_or_8_bit_empty_like_the_real_ones(small_set: Path) -> None:
    kinds = set()
    for path in (small_set / "train" / "masks").glob("*.png"):
        mask = io.imread(path)
        assert mask.shape == (NATIVE_SIZE, NATIVE_SIZE)
        if mask.dtype == np.uint16:
            assert set(np.unique(mask)) <= {0, 65535} and mask.any()
        else:
            assert mask.dtype == np.uint8 and not mask.any()
        kinds.add(mask.dtype.str)
    assert kinds == {"|u1", "<u2"}


def test_train_csv_decodes_to_the_masks(small_set: Path) -> None:
    rows = _read_csv(small_set / "train.csv")
    assert len(rows) == N_TRAIN and list(rows[0]) == ["id", "rle_mask"]
    for row in rows:
        mask = io.imread(small_set / "train" / "masks" / f"{row['id']}.png") > 0
        np.testing.assert_array_equal(rle_decode(row["rle_mask"]), mask.astype(np.float32))


def test_depths_csv_covers_train_and_test(small_set: Path) -> None:
    depths = {row["id"]: int(row["z"]) for row in _read_csv(small_set / "depths.csv")}
    train = {path.stem for path in (small_set / "train" / "images").glob("*.png")}
    test = {path.stem for path in (small_set / "test" / "images").glob("*.png")}
    assert set(depths) == train | test and not train & test
    assert all(50 <= z < 950 for z in depths.values())


def test_writing_is_deterministic_and_seeded(small_set: Path, tmp_path: Path) -> None:
    again = write_synthetic_dataset(tmp_path / "again", n_train=N_TRAIN, n_test=N_TEST, progress=False, workers=1)
    assert _files(again) == _files(small_set)
    other = write_synthetic_dataset(tmp_path / "other", n_train=5, n_test=1, seed=1, progress=False)
    other_ids = {path.stem for path in (other / "train" / "images").glob("*.png")}
    assert not other_ids & {path.stem for path in (small_set / "train" / "images").glob("*.png")}


def test_image_i_does_not_depend_on_how_many_are_written(small_set: Path, tmp_path: Path) -> None:
    fewer = write_synthetic_dataset(tmp_path / "fewer", n_train=6, n_test=2, seed=0, progress=False)
    for sub in ("train/images", "train/masks", "test/images"):
        for path in (fewer / sub).glob("*.png"):
            assert path.read_bytes() == (small_set / sub / path.name).read_bytes()


def test_worker_processes_write_the_same_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic_writer, "_MIN_PARALLEL", 1)
    parallel = write_synthetic_dataset(tmp_path / "parallel", n_train=6, n_test=2, progress=False, workers=2)
    serial = write_synthetic_dataset(tmp_path / "serial", n_train=6, n_test=2, progress=False, workers=1)
    assert _files(parallel) == _files(serial)


def test_falls_back_to_one_process_when_workers_cannot_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> list[tuple[str, str, int]]:
        raise BrokenProcessPool("no workers")

    monkeypatch.setattr(synthetic_writer, "_MIN_PARALLEL", 1)
    monkeypatch.setattr(synthetic_writer, "_write_in_processes", broken)
    with pytest.warns(UserWarning, match="could not start worker processes"):
        out = write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False, workers=2)
    assert len(list((out / "train" / "images").glob("*.png"))) == 3


def test_a_written_set_is_reused_not_rewritten(small_set: Path) -> None:
    before = {path: path.stat().st_mtime_ns for path in small_set.rglob("*")}
    assert write_synthetic_dataset(small_set, n_train=N_TRAIN, n_test=N_TEST, seed=0, progress=False) == small_set
    assert {path: path.stat().st_mtime_ns for path in small_set.rglob("*")} == before


def test_refuses_a_non_empty_folder_and_leaves_it_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing.*not a synthetic set"):
        write_synthetic_dataset(tmp_path, n_train=3, n_test=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_refuses_a_synthetic_set_with_other_settings(small_set: Path) -> None:
    with pytest.raises(FileExistsError, match="other settings"):
        write_synthetic_dataset(small_set, n_train=N_TRAIN + 1, n_test=N_TEST, progress=False)


def test_refuses_a_file_as_the_folder(tmp_path: Path) -> None:
    (tmp_path / "salt").write_text("")
    with pytest.raises(FileExistsError, match="not a folder"):
        write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)


def test_writes_into_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "salt").mkdir()
    out = write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    assert (out / "SYNTHETIC.json").is_file()


def test_a_changed_set_is_reported_not_silently_used(tmp_path: Path) -> None:
    out = write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    next((out / "train" / "images").glob("*.png")).unlink()
    with pytest.raises(DataError, match="train/images has 2 PNG files"):
        write_synthetic_dataset(out, n_train=3, n_test=1, progress=False)


def test_a_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(rng: np.random.Generator) -> SyntheticSection:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(synthetic_writer, "generate_sample", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n_train": -1}, "n_train"), ({"n_test": 2.5}, "n_test"), ({"seed": -3}, "seed"), ({"workers": 0}, "workers")],
)
def test_rejects_bad_counts(tmp_path: Path, kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        write_synthetic_dataset(tmp_path / "salt", **{"n_train": 2, "n_test": 1, "progress": False, **kwargs})


def test_a_full_disk_is_a_data_error_and_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, image: np.ndarray) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(synthetic_writer, "_save_image", full)
    with pytest.raises(DataError, match=r"cannot write the synthetic data set to .*salt: No space left on device"):
        write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_data_loader_reads_the_synthetic_set(small_set: Path) -> None:
    data = pytest.importorskip("helpers.data", reason="helpers.data is not written yet")
    dataset = data.load_train(small_set, progress=False)
    assert len(dataset.ids) == N_TRAIN
    assert dataset.images.shape == dataset.masks.shape == (N_TRAIN, NATIVE_SIZE, NATIVE_SIZE)
    rows = {row["id"]: row["rle_mask"] for row in _read_csv(small_set / "train.csv")}
    for sample_id, mask in zip(dataset.ids, dataset.masks):
        np.testing.assert_array_equal(mask, rle_decode(rows[sample_id]))
    depths = {row["id"]: float(row["z"]) for row in _read_csv(small_set / "depths.csv")}
    np.testing.assert_array_equal(dataset.depths, [depths[sample_id] for sample_id in dataset.ids])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds worker processes through /proc")
def test_a_generation_killed_with_sigkill_leaves_no_workers_and_the_retry_succeeds(tmp_path: Path) -> None:
    # The run slows its sections down so that it is surely in the middle of writing when killed.
    code = (
        "import sys, time\n"
        "from helpers import synthetic, synthetic_writer\n"
        "synthetic_writer._MIN_PARALLEL = 1\n"
        "real = synthetic_writer.generate_sample\n"
        "synthetic_writer.generate_sample = lambda rng: (time.sleep(0.02), real(rng))[1]\n"
        "sys.exit(synthetic.main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-c", code, str(tmp_path / "salt"), "--n-train", "400", "--n-test", "1", "--quiet"]
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".salt.partial-*/train/images/*.png")):
        assert time.monotonic() < deadline and run.poll() is None, "the generation did not start"
        time.sleep(0.05)
    workers = _children(run.pid)
    assert workers
    run.kill()
    assert run.wait(timeout=30) == -signal.SIGKILL
    # The kernel sends the workers their parent-death signal at once; give them a moment to go.
    deadline = time.monotonic() + 10
    while [pid for pid in workers if _running(pid)]:
        assert time.monotonic() < deadline, f"worker processes {workers} outlived their parent"
        time.sleep(0.05)
    # kill -9 leaves the staging folder behind, in nobody's way; the next run removes it and writes the set.
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name]
    out = write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["salt"] and (out / "SYNTHETIC.json").is_file()


def _children(pid: int) -> list[int]:
    """Process ids of a process's children (Linux)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _running(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped (Linux)."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
