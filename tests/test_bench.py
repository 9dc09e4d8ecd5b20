"""The training benchmark: its pure helpers, and one tiny end-to-end run on the real data."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import train_bench as bench
from helpers.config import FINE_TUNE_EPOCHS, REAL_DATA_RECIPE
from helpers.errors import DataError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PIPELINE_KEYS = {"train_images_per_s", "infer_images_per_s", "peak_rss_mib", "seconds_to_score", "best_score",
                 "matmul_fraction"}
SCORE_KEYS = {"0.60", "0.65", "0.70", "0.75", "0.80", "original_best"}


def history(*scores: float, seconds: float = 2.0) -> list[dict[str, float]]:
    """A per-epoch history as the benchmark's children record it."""
    return [{"epoch": i + 1, "train_seconds": seconds, "eval_seconds": 0.5, "score": score, "loss": 0.5,
             "val_loss": 0.5} for i, score in enumerate(scores)]


def child_result(scores: tuple[float, ...], digest: str = "abc", matmul: float | None = None) -> dict:
    """What one contender's subprocess hands back."""
    result = {"history": history(*scores), "n_train": 90, "n_val": 10, "val_digest": digest,
              "train_images_per_s": 45.0, "infer_images_per_s": 150.0, "train_flops_per_image": 2e9,
              "parameters": 1000, "setup": "float32", "device": "cpu", "peak_rss_mib": 1500.0}
    if matmul is not None:
        result["matmul_gflops"] = matmul
    return result


def fake_data_dir(root: Path) -> Path:
    """An empty folder in Kaggle's layout (enough for the settings check)."""
    for sub in ("train/images", "train/masks"):
        (root / sub).mkdir(parents=True)
    return root


# ---------------------------------------------------------------------------------------------- settings


def test_quick_defaults_and_explicit_overrides(tmp_path):
    data = fake_data_dir(tmp_path / "tgs")
    quick = bench.resolve_settings(bench.parse_args(["--quick", "--data-dir", str(data)]))
    assert (quick["n_images"], quick["epochs"], quick["quick"]) == (bench.QUICK_N_IMAGES, bench.QUICK_EPOCHS, True)
    assert quick["pipelines"] == ["original", "course"] and quick["patience"] == 10
    assert quick["finetune_epochs"] == bench.QUICK_FINETUNE_EPOCHS
    full = bench.resolve_settings(bench.parse_args(["--data-dir", str(data), "--only", "course"]))
    assert (full["n_images"], full["epochs"], full["pipelines"]) == (0, 50, ["course"])
    # The course trains for its real-data recipe's epochs (a cosine schedule is planned for them), not the
    # original's cap.
    assert full["course_epochs"] == REAL_DATA_RECIPE["epochs"] and quick["course_epochs"] == bench.QUICK_EPOCHS
    assert full["finetune_epochs"] == FINE_TUNE_EPOCHS  # the second stage as notebook 04 runs it
    mine = bench.resolve_settings(bench.parse_args(["--quick", "--data-dir", str(data), "--epochs", "2",
                                                    "--n-images", "96", "--patience", "3", "--finetune-epochs", "0"]))
    assert (mine["n_images"], mine["epochs"], mine["patience"], mine["finetune_epochs"]) == (96, 2, 3, 0)
    assert mine["course_epochs"] == 2  # --epochs caps both pipelines


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--n-images", "-1"], ["--patience", "0"],
                                    ["--finetune-epochs", "-1"], ["--only", "mine"]])
def test_bad_options_are_refused(option, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(option)
    assert option[0] in capsys.readouterr().err


def test_missing_data_is_a_clear_error_naming_the_folder_and_the_variable(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=f"{missing}.*SALT_DATA_DIR"):
        bench.check_data_dir(missing)
    assert bench.main(["--quick", "--data-dir", str(missing)]) == 2
    error = capsys.readouterr().err
    assert str(missing) in error and "SALT_DATA_DIR" in error


def test_a_failing_pipeline_is_reported_and_ends_the_run(tmp_path, monkeypatch, capsys):
    def fail(name, settings, measure_matmul):
        raise RuntimeError(f"the {name} pipeline failed (exit code 1); its output is above")

    monkeypatch.setattr(bench, "run_contender", fail)
    assert bench.main(["--quick", "--data-dir", str(fake_data_dir(tmp_path / "tgs")), "--out", str(tmp_path)]) == 1
    assert "original pipeline failed" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json"))


def test_default_data_dir_is_the_variable_else_the_shared_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SALT_DATA_DIR", str(tmp_path))
    assert bench.default_data_dir() == tmp_path
    monkeypatch.delenv("SALT_DATA_DIR")
    assert bench.default_data_dir() == PROJECT_ROOT.parent / "shared" / "data" / "tgs-salt"


def test_cpu_info_reads_the_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t: avx2\n")
    assert bench.cpu_info(cpuinfo) == {"model": "Test CPU 9000", "cores": os.cpu_count()}
    assert bench.cpu_info(tmp_path / "absent")["model"] == "unknown"


# ---------------------------------------------------------------------------------------------- results


def test_seconds_to_score_counts_training_time_up_to_the_first_epoch_that_reaches_it():
    rows = history(0.1, 0.62, 0.58, 0.71, seconds=3.0)
    assert bench.seconds_to_score(rows, 0.60) == pytest.approx(6.0)
    assert bench.seconds_to_score(rows, 0.70) == pytest.approx(12.0)
    assert bench.seconds_to_score(rows, 0.71) == pytest.approx(12.0)  # reaching counts, as for "original_best"
    assert bench.seconds_to_score(rows, 0.80) is None
    assert bench.seconds_to_score([], 0.5) is None


def test_median_train_rate_leaves_out_the_warm_up_epoch():
    rows = history(0, 0, 0, 0)
    for row, seconds in zip(rows, (10.0, 1.0, 2.0, 4.0)):
        row["train_seconds"] = seconds
    assert bench.median_train_rate(rows, 100) == pytest.approx(50.0)  # median of 100, 50, 25
    assert bench.median_train_rate(rows[:1], 100) == pytest.approx(10.0)  # one epoch: all there is
    with pytest.raises(ValueError, match="at least one epoch"):
        bench.median_train_rate([], 100)
    second_stage = [{**row, "stage": 2, "train_seconds": 0.5} for row in rows]
    assert bench.median_train_rate(rows + second_stage, 100) == pytest.approx(50.0)  # its epochs left out


def test_pipeline_summary_reports_exactly_the_six_numbers():
    summary = bench.pipeline_summary(child_result((0.3, 0.65, 0.61)), matmul_gflops=200.0, original_best=0.61)
    assert set(summary) == PIPELINE_KEYS and set(summary["seconds_to_score"]) == SCORE_KEYS
    assert summary["best_score"] == 0.65
    assert summary["seconds_to_score"]["0.60"] == pytest.approx(4.0)
    assert summary["seconds_to_score"]["original_best"] == pytest.approx(4.0)
    assert summary["seconds_to_score"]["0.70"] is None
    assert summary["matmul_fraction"] == pytest.approx(45.0 * 2e9 / 200e9)
    alone = bench.pipeline_summary(child_result((0.3,)), matmul_gflops=200.0, original_best=None)
    assert alone["seconds_to_score"]["original_best"] is None


def test_report_holds_both_pipelines_the_machine_and_the_settings():
    settings = {"quick": True, "epochs": 3, "course_epochs": 3, "finetune_epochs": 1, "n_images": 100, "patience": 10,
                "data_dir": "/data", "seed": 0, "val_fraction": 0.1}
    results = {"original": child_result((0.5, 0.6)), "course": child_result((0.55, 0.7), matmul=100.0)}
    report = bench.build_report(results, settings, "2026-01-01T00:00:00+00:00", "2026-01-01T00:10:00+00:00")
    assert set(report["pipelines"]) == {"original", "course"}
    assert report["pipelines"]["course"]["seconds_to_score"]["original_best"] == pytest.approx(4.0)
    assert report["matmul_gflops"] == 100.0 and report["device"] == "cpu"
    assert set(report["cpu"]) == {"model", "cores"}
    assert report["settings"]["n_images"] == 100 and report["settings"]["quick"] is True
    assert report["settings"]["pipelines"]["original"]["epochs_run"] == 2
    assert report["started_at"] < report["finished_at"]
    text = bench.format_table(report)
    assert "original" in text and "course" in text and "100.0 GFLOP/s" in text
    results["course"]["val_digest"] = "other"
    with pytest.raises(RuntimeError, match="different images"):
        bench.build_report(results, settings, "a", "b")


def test_write_report_adds_a_new_file_each_time_and_updates_latest(tmp_path):
    first = bench.write_report({"run": 1}, tmp_path / "bench")
    second = bench.write_report({"run": 2}, tmp_path / "bench")
    assert first != second and json.loads(first.read_text()) == {"run": 1}
    assert json.loads((tmp_path / "bench" / "latest.json").read_text()) == {"run": 2}
    # Reports written within the same second get numbered names; none replaces another.
    named = [bench.write_report({"run": i}, tmp_path / "bench", prefix="throughput", latest="latest-throughput.json")
             for i in range(3)]
    assert len(set(named)) == 3 and all(path.name.startswith("throughput-") for path in named)
    assert [json.loads(path.read_text())["run"] for path in named] == [0, 1, 2]
    assert json.loads((tmp_path / "bench" / "latest-throughput.json").read_text()) == {"run": 2}
    assert json.loads(first.read_text()) == {"run": 1}


def test_peak_rss_grows_by_what_the_process_touches():
    # In a fresh process (Linux carries the parent's peak across exec, so the block outgrows it first).
    code = ("import numpy as np, benchmarks.train_bench as b; before = b.peak_rss_mib(); "
            "block = np.ones(int((before + 200) * 2**20) // 8); print(before, b.peak_rss_mib())")
    completed = subprocess.run([sys.executable, "-c", code], cwd=bench.REPO_ROOT, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    before, after = map(float, completed.stdout.split())
    assert before > 10 and after > before + 150


def test_the_course_contender_trains_through_the_command_line(monkeypatch, tmp_path):
    import dataclasses

    import helpers.training
    from helpers.config import FINE_TUNE_LEARNING_RATE, FINE_TUNE_LOSS, TrainConfig

    called = {}

    def command_line(argv):
        called["argv"] = argv
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(helpers.training, "main", command_line)
    settings = {"data_dir": str(tmp_path), "n_images": 64, "epochs": 3, "patience": 7, "finetune_epochs": 2}
    with pytest.raises(RuntimeError, match="stopped before training"):
        bench._run_course(settings)
    config, run_dir, _, stage_two = helpers.training.parse_args(called["argv"])
    # The course's defaults with its real-data recipe (precision "auto" included: what this machine picks), on
    # the benchmark's split; the settings' epochs win over the recipe's.
    recipe = {name: value for name, value in REAL_DATA_RECIPE.items() if name != "epochs"}
    assert recipe and config == dataclasses.replace(TrainConfig(), **recipe, data_dir=str(tmp_path), n_images=64,
                                                    epochs=3, early_stopping_patience=7, seed=bench.SPLIT_SEED,
                                                    val_fraction=bench.VAL_FRACTION)
    assert stage_two == {"epochs": 2, "loss": FINE_TUNE_LOSS, "learning_rate": FINE_TUNE_LEARNING_RATE}


def test_matmul_rate_is_measured_after_the_warm_up():
    started = time.perf_counter()
    rate = bench.measure_matmul_gflops(sizes=(64, 128), repeats=3, warm_up_seconds=0.2)
    assert time.perf_counter() - started >= 2 * 0.2  # each size warmed up for its own 0.2 s
    assert 0.01 < rate < 1e6


def test_original_arrays_are_skimage_resized_like_the_notebook(real_data_dir):
    from skimage.transform import resize

    from helpers.data import load_train

    arrays = bench.load_original_arrays(real_data_dir, 6)
    native = load_train(real_data_dir, n_images=6, progress=False)
    assert arrays["ids"] == native.ids
    assert arrays["images"].shape == arrays["masks"].shape == (6, 128, 128, 1)
    assert arrays["images"].dtype == arrays["masks"].dtype == np.float32
    expected = resize(native.images[0][..., None], (128, 128, 1), mode="constant", preserve_range=True)
    np.testing.assert_allclose(arrays["images"][0], expected, atol=1e-6)
    assert 0 <= arrays["masks"].min() and arrays["masks"].max() <= 1
    np.testing.assert_array_equal(arrays["masks_native"], native.masks > 0.5)
    np.testing.assert_allclose(arrays["coverage"], native.masks.mean(axis=(1, 2)), atol=1e-6)


# ---------------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_quick_benchmark_run_writes_a_complete_report(real_data_dir, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "benchmarks.train_bench", "--quick", "--n-images", "48", "--epochs", "2",
               "--data-dir", str(real_data_dir), "--out", str(tmp_path)]
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-4000:]
    assert "original" in completed.stdout and "course" in completed.stdout

    (stamped,) = tmp_path.glob("bench-*.json")
    report = json.loads((tmp_path / "latest.json").read_text())
    assert json.loads(stamped.read_text()) == report
    assert set(report) == {"pipelines", "matmul_gflops", "cpu", "device", "settings", "started_at", "finished_at"}
    assert set(report["pipelines"]) == {"original", "course"}
    assert report["matmul_gflops"] > 0 and report["cpu"]["cores"] >= 1 and report["device"]
    settings = report["settings"]
    assert (settings["quick"], settings["epochs"], settings["n_images"]) == (True, 2, 48)
    assert settings["finetune_epochs"] == bench.QUICK_FINETUNE_EPOCHS
    assert settings["pipelines"]["original"]["parameters"] == 1_179_121
    # The course's second stage ran after its first: its epochs count on, up to the early stop.
    assert settings["pipelines"]["course"]["epochs_run"] == 2 + bench.QUICK_FINETUNE_EPOCHS
    assert "lovasz fine-tuning" in settings["pipelines"]["course"]["setup"]
    for name, row in report["pipelines"].items():
        assert set(row) == PIPELINE_KEYS, name
        assert row["train_images_per_s"] > 0 and row["infer_images_per_s"] > 0 and row["peak_rss_mib"] > 0
        # Against the float32 matmul rate: a float32 run stays below it, a bfloat16 one (what "auto" picks on a
        # CPU with AVX512-BF16) may pass it, and the quick run's small product reads the rate low.
        bound = 1.5 if "float32" in settings["pipelines"][name]["setup"] else 10
        assert 0 < row["matmul_fraction"] < bound, name
        assert 0.0 <= row["best_score"] <= 1.0
        assert set(row["seconds_to_score"]) == SCORE_KEYS
        for target, seconds in row["seconds_to_score"].items():
            assert seconds is None or (math.isfinite(seconds) and seconds > 0), (name, target)
    # The original reaches its own best score by definition.
    assert report["pipelines"]["original"]["seconds_to_score"]["original_best"] is not None
