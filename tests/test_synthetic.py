"""Tests for helpers.synthetic: the physics pieces, the coverage mix, the Kaggle layout and the cache."""

from __future__ import annotations

import csv
import errno
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import io

from helpers import NATIVE_SIZE, synthetic
from helpers.errors import DataError
from helpers.rle import rle_decode
from helpers.synthetic import (
    cache_root,
    builtin_data_dir,
    convolve_vertical,
    fold_and_fault_times,
    generate_sample,
    generate_section,
    impedance_log,
    layered_impedance,
    reflectivity,
    ricker_wavelet,
    roughen,
    salt_body_mask,
    salt_level_set,
    salt_probability,
    sample_coverage,
    sample_depth,
    sample_peak_frequency,
    sample_rng,
    smooth_random_field,
    synthetic_ids,
    write_synthetic_dataset,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = 40, 8


def _rng(seed: int = 0) -> np.random.Generator:
    """A fresh generator for a test."""
    return np.random.default_rng(seed)


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


@pytest.fixture(scope="module")
def many_sections() -> list[synthetic.SyntheticSection]:
    """300 sections, for the statistics of the mix."""
    return [generate_sample(sample_rng(0, "train", index)) for index in range(300)]


# ---------------------------------------------------------------------------- physics pieces


def test_ricker_wavelet_is_symmetric_zero_mean_and_peaks_at_its_frequency() -> None:
    wavelet = ricker_wavelet(0.05, 60)
    assert wavelet.shape == (121,)
    assert wavelet[60] == pytest.approx(1.0)
    np.testing.assert_allclose(wavelet, wavelet[::-1])
    assert abs(wavelet.sum()) < 1e-6
    spectrum = np.abs(np.fft.rfft(wavelet, 4096))
    assert np.fft.rfftfreq(4096)[np.argmax(spectrum)] == pytest.approx(0.05, abs=0.002)


@pytest.mark.parametrize(("frequency", "half_length"), [(0.0, 10), (0.7, 10), (0.05, 0)])
def test_ricker_wavelet_rejects_bad_parameters(frequency: float, half_length: int) -> None:
    with pytest.raises(ValueError, match="peak_frequency|half_length"):
        ricker_wavelet(frequency, half_length)


def test_convolve_vertical_puts_the_wavelet_at_each_spike() -> None:
    section = np.zeros((50, 3))
    section[20, :] = [1.0, -2.0, 0.5]
    wavelet = ricker_wavelet(0.1, 8)
    out = convolve_vertical(section, wavelet)
    assert out.shape == section.shape
    np.testing.assert_allclose(out[12:29, 1], -2.0 * wavelet, atol=1e-12)
    np.testing.assert_allclose(out[:10], 0.0, atol=1e-12)


def test_convolve_vertical_works_on_stacks_of_sections() -> None:
    sections = _rng().standard_normal((2, 40, 5))
    wavelet = ricker_wavelet(0.1, 6)
    out = convolve_vertical(sections, wavelet)
    np.testing.assert_allclose(out[1], convolve_vertical(sections[1], wavelet))
    np.testing.assert_allclose(out[1][:, 2], np.convolve(sections[1][:, 2], wavelet, mode="same"), atol=1e-12)


@pytest.mark.parametrize(("shape", "length"), [((10,), 7), ((10, 3), 6)])
def test_convolve_vertical_rejects_wrong_shapes(shape: tuple[int, ...], length: int) -> None:
    with pytest.raises(ValueError, match="odd-length"):
        convolve_vertical(np.zeros(shape), np.ones(length))


def test_smooth_random_field_is_standardised_and_correlated_over_sigma() -> None:
    field = smooth_random_field(_rng(), (400, 300), (2.0, 6.0))
    assert field.shape == (400, 300)
    assert abs(field.mean()) < 0.1 and field.std() == pytest.approx(1.0, abs=0.05)
    # A Gaussian-smoothed white noise has autocorrelation exp(-lag^2 / (4 sigma^2)).
    assert np.mean(field[2:] * field[:-2]) == pytest.approx(np.exp(-0.25), abs=0.05)
    assert np.mean(field[:, 6:] * field[:, :-6]) == pytest.approx(np.exp(-0.25), abs=0.08)
    np.testing.assert_array_equal(field, smooth_random_field(_rng(), (400, 300), (2.0, 6.0)))


@pytest.mark.parametrize(("shape", "sigma"), [((180, 101), (0.5, 1.0)), ((101, 101), 12.0), ((101,), 8.0)])
def test_smooth_random_field_has_unit_variance_on_average(shape: tuple[int, ...], sigma: float) -> None:
    rng = _rng()
    variances = [np.mean(smooth_random_field(rng, shape, sigma) ** 2) for _ in range(200)]
    assert np.mean(variances) == pytest.approx(1.0, abs=0.06)


def test_reflectivity_is_half_the_jump_in_log_impedance() -> None:
    log_impedance = np.zeros((10, 2))
    log_impedance[6:] = 0.4
    out = reflectivity(log_impedance)
    assert out.shape == (10, 2)
    np.testing.assert_allclose(out[5], 0.2)
    assert np.count_nonzero(out) == 2


def test_impedance_log_is_layered_in_geological_time() -> None:
    times = np.linspace(-20.0, 120.0, 2000)
    log = impedance_log(_rng(), times, mean_thickness=6.0)
    assert log.shape == times.shape and np.isfinite(log).all()
    # Mostly flat inside beds, with jumps at bed boundaries.
    steps = np.abs(np.diff(log))
    assert np.mean(steps < 1e-9) > 0.5 and np.ptp(log) > 0.1
    with pytest.raises(ValueError, match="mean_thickness"):
        impedance_log(_rng(), times, mean_thickness=0.0)


def test_fold_and_fault_times_increase_downwards() -> None:
    x, z = np.arange(NATIVE_SIZE), np.arange(-20, NATIVE_SIZE + 20)
    for seed in range(20):
        times = fold_and_fault_times(_rng(seed), x, z)
        assert times.shape == (z.size, x.size)
        assert np.mean(np.diff(times, axis=0) > 0) > 0.9


def test_layered_impedance_follows_the_time_field() -> None:
    times = np.tile(np.arange(100.0)[:, None], (1, 7))
    log = layered_impedance(_rng(), times, period=20.0)
    assert log.shape == times.shape
    np.testing.assert_allclose(log, np.repeat(log[:, :1], 7, axis=1))


@pytest.mark.parametrize("kind", ["top", "flank", "dome", "diapir", "sheet", "base"])
def test_salt_level_set_is_a_body_with_inside_and_outside(kind: str) -> None:
    x, z = np.arange(NATIVE_SIZE), np.arange(-40, NATIVE_SIZE + 40)
    for seed in range(5):
        level = salt_level_set(_rng(seed), kind, x, z)
        assert level.shape == (z.size, x.size) and np.isfinite(level).all()
        assert level.max() > 0 > level.min()
        # Close to a signed distance: neighbouring pixels differ by about a pixel at most.
        assert np.percentile(np.abs(np.diff(level, axis=0)), 95) < 1.6


def test_salt_level_set_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="salt kind"):
        salt_level_set(_rng(), "pillow", np.arange(5), np.arange(5))


def test_roughen_moves_the_outline_by_a_few_pixels() -> None:
    level = np.zeros((150, 101))
    rough = roughen(_rng(), level)
    assert rough.shape == level.shape
    assert 0.1 < np.abs(rough).max() < 15.0


@pytest.mark.parametrize("coverage", [0.0, 0.0004, 0.3, 0.97, 1.0])
def test_salt_body_mask_has_exactly_the_wanted_coverage(coverage: float) -> None:
    level = smooth_random_field(_rng(), (NATIVE_SIZE, NATIVE_SIZE), 8.0)
    mask, threshold = salt_body_mask(level, coverage)
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    assert int(mask.sum()) == round(coverage * mask.size)
    np.testing.assert_array_equal(mask, (level > threshold).astype(np.float32))


def test_salt_body_mask_rejects_a_coverage_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="coverage"):
        salt_body_mask(np.zeros((3, 3)), 1.5)


def test_sample_depth_is_spread_like_the_real_depths() -> None:
    depths = np.array([sample_depth(_rng(seed)) for seed in range(400)])
    assert depths.min() >= 50 and depths.max() < 950
    assert 450 < depths.mean() < 560


def test_salt_probability_is_low_for_shallow_sections() -> None:
    assert 0 < salt_probability(60) < salt_probability(500) <= 1
    assert salt_probability(950) < salt_probability(500)


def test_sample_coverage_is_spread_and_sometimes_full() -> None:
    coverages = np.array([sample_coverage(_rng(seed)) for seed in range(600)])
    assert coverages.min() > 0 and coverages.max() == 1.0
    assert 0.15 < np.mean(coverages < 0.1) < 0.55
    assert np.mean(coverages > 0.5) > 0.2


def test_sample_peak_frequency_is_lower_for_deeper_sections() -> None:
    shallow = np.mean([sample_peak_frequency(_rng(seed), 100) for seed in range(200)])
    deep = np.mean([sample_peak_frequency(_rng(seed), 900) for seed in range(200)])
    assert 0.022 <= deep < shallow <= 0.3


# ---------------------------------------------------------------------------- sections and the mix


def test_generate_section_returns_an_image_and_a_mask() -> None:
    image, mask = generate_section(_rng())
    assert image.shape == mask.shape == (NATIVE_SIZE, NATIVE_SIZE)
    assert image.dtype == mask.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert set(np.unique(mask)) <= {0.0, 1.0}
    # Exactly representable in 8 bits, so what is written is what was generated.
    np.testing.assert_array_equal(np.round(image * 255) / 255, image)


def test_sections_are_deterministic_per_seed_split_and_index() -> None:
    first = generate_sample(sample_rng(3, "train", 7))
    again = generate_sample(sample_rng(3, "train", 7))
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.mask, again.mask)
    assert first.depth == again.depth
    for other in (sample_rng(4, "train", 7), sample_rng(3, "test", 7), sample_rng(3, "train", 8)):
        assert not np.array_equal(generate_sample(other).image, first.image)


def test_sample_rng_rejects_an_unknown_split() -> None:
    with pytest.raises(ValueError, match="split"):
        sample_rng(0, "validation", 0)


def test_coverage_mix_is_like_the_real_data(many_sections: list[synthetic.SyntheticSection]) -> None:
    coverage = np.array([section.mask.mean() for section in many_sections])
    assert 0.30 < np.mean(coverage == 0) < 0.48  # real: 39 % empty
    assert np.sum(coverage == 1) >= 1
    assert len(np.unique(np.digitize(coverage[coverage > 0], np.linspace(0, 1, 11)))) >= 8


def test_grey_levels_are_like_the_real_data(many_sections: list[synthetic.SyntheticSection]) -> None:
    images = np.stack([section.image for section in many_sections])
    assert 0.44 < images.mean() < 0.52  # real: 0.47 (0.48 without the blank images)
    assert 0.12 < images.std() < 0.18  # real: 0.16 (0.15 without the blank images)
    assert np.mean((images == 0) | (images == 1)) < 0.01


def test_salt_is_quieter_inside_than_the_sediments_outside(many_sections: list[synthetic.SyntheticSection]) -> None:
    ratios = [
        section.image[section.mask > 0].std() / section.image[section.mask == 0].std()
        for section in many_sections
        if 0.2 < section.mask.mean() < 0.8
    ]
    assert 0.5 < np.median(ratios) < 0.95  # real: 0.79


def test_synthetic_ids_look_like_kaggle_ids_and_are_unique() -> None:
    ids = synthetic_ids(0, "train", 500)
    assert len(set(ids)) == 500
    assert all(len(i) == 10 and all(c in "0123456789abcdef" for c in i) for i in ids)
    assert synthetic_ids(0, "train", 5) == ids[:5]
    assert synthetic_ids(1, "train", 5) != ids[:5]
    assert not set(synthetic_ids(0, "test", 500, taken=ids)) & set(ids)


# ---------------------------------------------------------------------------- the written layout


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
    monkeypatch.setattr(synthetic, "_MIN_PARALLEL", 1)
    parallel = write_synthetic_dataset(tmp_path / "parallel", n_train=6, n_test=2, progress=False, workers=2)
    serial = write_synthetic_dataset(tmp_path / "serial", n_train=6, n_test=2, progress=False, workers=1)
    assert _files(parallel) == _files(serial)


def test_falls_back_to_one_process_when_workers_cannot_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> list[tuple[str, str, int]]:
        raise synthetic.BrokenProcessPool("no workers")

    monkeypatch.setattr(synthetic, "_MIN_PARALLEL", 1)
    monkeypatch.setattr(synthetic, "_write_in_processes", broken)
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
    def broken(rng: np.random.Generator) -> synthetic.SyntheticSection:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(synthetic, "generate_sample", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_losing_the_race_uses_the_winners_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "salt"
    real_write_layout = synthetic._write_layout

    def racing(root: Path, marker: dict[str, object], progress: bool, workers: int) -> None:
        real_write_layout(root, marker, progress, workers)
        shutil.copytree(root, out)  # another process publishes the same set first

    monkeypatch.setattr(synthetic, "_write_layout", racing)
    assert write_synthetic_dataset(out, n_train=3, n_test=1, progress=False) == out
    assert (out / "SYNTHETIC.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["salt"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n_train": -1}, "n_train"), ({"n_test": 2.5}, "n_test"), ({"seed": -3}, "seed"), ({"workers": 0}, "workers")],
)
def test_rejects_bad_counts(tmp_path: Path, kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        write_synthetic_dataset(tmp_path / "salt", **{"n_train": 2, "n_test": 1, "progress": False, **kwargs})


# ---------------------------------------------------------------------------- cache and command line


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
    assert synthetic._cache_name(0, 4000, 500) == "synthetic-v1-seed0-n4000"


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


def test_command_line_writes_a_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert synthetic.main([str(tmp_path / "cli"), "--n-train", "3", "--n-test", "1", "--seed", "2", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    assert json.loads((tmp_path / "cli" / "SYNTHETIC.json").read_text())["seed"] == 2


def test_command_line_reports_a_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.txt").write_text("")
    assert synthetic.main([str(tmp_path), "--n-train", "3", "--quiet"]) == 2
    assert "refusing" in capsys.readouterr().err


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


# ---------------------------------------------------------------------------- a damaged or unusable cache


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
    with pytest.raises(DataError, match=rf"cache folder {re.escape(str(folder))} is damaged: .*{said}.*delete that folder"):
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


def test_a_full_disk_is_a_data_error_and_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, image: np.ndarray) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(synthetic, "_save_image", full)
    with pytest.raises(DataError, match=r"cannot write the synthetic data set to .*salt: No space left on device"):
        write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- a generation that is killed


def test_staging_left_by_a_dead_writer_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    dead, live, unlocked = (tmp_path / f".salt.partial-{name}" for name in ("1-dead", "2-live", "3-new"))
    for staging in (dead, live, unlocked):
        (staging / "train" / "images").mkdir(parents=True)
        (staging / "train" / "images" / "half.png").write_bytes(b"\x89PNG")
    (dead / synthetic._LOCK_NAME).write_text("")
    (live / synthetic._LOCK_NAME).write_text("")
    old_unlocked = tmp_path / ".salt.partial-4-old"
    shutil.copytree(unlocked, old_unlocked)
    os.utime(old_unlocked, (0, 0))  # no lock file and long untouched: killed before it could lock
    with open(live / synthetic._LOCK_NAME) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a writer still at work
        out = write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, unlocked.name, "salt"]
    assert not (out / synthetic._LOCK_NAME).exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds worker processes through /proc")
def test_a_generation_killed_with_sigkill_leaves_no_workers_and_the_retry_succeeds(tmp_path: Path) -> None:
    # The run slows its sections down so that it is surely in the middle of writing when killed.
    code = (
        "import sys, time\n"
        "from helpers import synthetic\n"
        "synthetic._MIN_PARALLEL = 1\n"
        "real = synthetic.generate_sample\n"
        "synthetic.generate_sample = lambda rng: (time.sleep(0.02), real(rng))[1]\n"
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


@pytest.mark.parametrize(("signum", "outcome"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_ctrl_c_or_sigterm_of_the_command_line_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], signum: int, outcome: int
) -> None:
    def signalled(items: Iterable, total: int, label: str, enabled: bool) -> Iterator:
        for number, item in enumerate(items):
            if number == 2:
                os.kill(os.getpid(), signum)  # as from the terminal or a job scheduler, mid-way
            yield item

    monkeypatch.setattr(synthetic, "_MIN_PARALLEL", 1)
    monkeypatch.setattr(synthetic, "_progress", signalled)
    argv = [str(tmp_path / "salt"), "--n-train", "8", "--n-test", "1", "--quiet"]

    class Escaped(Exception):
        """The signal reached the test: main did not handle it (and would have left its staging folder)."""

    def escaped(*args: object) -> None:
        raise Escaped(f"signal {signum} was not handled by main")

    # Should main not handle the signal, the test fails instead of the test process being stopped.
    previous = signal.signal(signal.SIGTERM, escaped)
    try:
        try:
            code = synthetic.main(argv)  # Ctrl-C: main returns
        except SystemExit as stop:  # SIGTERM: main exits, as the process would
            code = stop.code
        except KeyboardInterrupt as error:
            raise Escaped("KeyboardInterrupt escaped main") from error
        assert code == outcome
        assert signal.getsignal(signal.SIGTERM) is escaped  # main put the previous handler back
    finally:
        signal.signal(signal.SIGTERM, previous)
    if signum == signal.SIGINT:
        assert "interrupted: nothing was written" in capsys.readouterr().err
    assert multiprocessing.active_children() == []  # the worker processes were shut down
    assert list(tmp_path.iterdir()) == []  # and the staging folder removed


def _children(pid: int) -> list[int]:
    """Process ids of a process's children (Linux)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _running(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped (Linux)."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
