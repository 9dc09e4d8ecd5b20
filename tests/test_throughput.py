"""The throughput probe: variant selection, the table, and one quick run end to end."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import throughput

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_all_variants_by_default_and_a_baseline_among_them():
    names = [variant.name for variant in throughput.select_variants("")]
    assert names[0] == "baseline" and len(names) == len(set(names)) == len(throughput.VARIANTS)


def test_only_picks_variants_in_the_given_order_and_quick_shrinks_the_model():
    chosen = throughput.select_variants("xla, baseline", quick=True)
    assert [variant.name for variant in chosen] == ["xla", "baseline"]
    assert chosen[0].jit_compile and chosen[0].img_size == throughput.QUICK["img_size"]
    assert throughput.select_variants("xla")[0].img_size == 112


def test_unknown_variant_is_named_in_the_error():
    with pytest.raises(ValueError, match="'nope'"):
        throughput.select_variants("baseline,nope")
    assert throughput.main(["--only", "nope"]) == 2


def test_ablations_remove_the_layers_they_name_and_keep_the_convolutions():
    from helpers.model import conv_flops_per_image

    def kinds(name):
        model = throughput.build_variant_model(throughput.select_variants(name, quick=True)[0])
        dropouts = [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"]
        norms = [layer for layer in model.layers if "BatchNormalization" in type(layer).__name__]
        return max(dropouts), len(norms), conv_flops_per_image(model)

    base_dropout, base_norms, base_flops = kinds("baseline")
    assert base_dropout > 0 and base_norms > 0
    assert kinds("no_dropout") == (0.0, base_norms, base_flops)
    assert kinds("no_batch_norm") == (base_dropout, 0, base_flops)
    assert kinds("convolutions_only") == (0.0, 0, base_flops)


@pytest.mark.parametrize("names, culprit", [("baseline,onednn_off", "onednn_off"),
                                            ("baseline,no_dropout,float32", "float32")])
def test_interleave_refuses_variants_that_need_their_own_process(names, culprit, capsys):
    with pytest.raises(ValueError, match=f"'{culprit}' needs its own process"):
        throughput.check_interleavable(throughput.select_variants(names))
    assert throughput.main(["--interleave", "--only", names]) == 2
    assert culprit in capsys.readouterr().err
    throughput.check_interleavable(throughput.select_variants("baseline,keras_batch_norm,no_dropout,baseline"))


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--steps", "0"]])
def test_bad_counts_are_refused(option):
    with pytest.raises(SystemExit):
        throughput.parse_args(option)


def test_matmul_fraction_and_table_relative_to_the_baseline():
    from benchmarks.train_bench import matmul_fraction

    assert matmul_fraction(20.0, 4e9, 200.0) == pytest.approx(0.4)
    # Each variant's fraction is of the matmul rate measured right after it (the machine's speed drifts).
    rows = [{"name": "baseline", "what": "base", "train_images_per_s": 20.0, "epoch_images_per_s": 18.0,
             "train_flops_per_image": 4e9, "matmul_gflops": 200.0},
            {"name": "xla", "what": "XLA", "train_images_per_s": 5.0, "epoch_images_per_s": 4.5,
             "train_flops_per_image": 4e9, "matmul_gflops": 100.0},
            {"name": "batch_16", "what": "batch 16", "train_images_per_s": 10.0, "epoch_images_per_s": 9.0,
             "train_flops_per_image": 4e9, "matmul_gflops": 160.0}]
    table = throughput.format_table(rows).splitlines()
    assert "median 160.0 GFLOP/s (100.0-200.0)" in table[0]
    assert table[3].split()[:6] == ["baseline", "20.0", "18.0", "1.00", "200.0", "40.0%"]
    assert table[4].split()[:6] == ["xla", "5.0", "4.5", "0.25", "100.0", "20.0%"]
    assert table[5].split()[:6] == ["batch_16", "10.0", "9.0", "0.50", "160.0", "25.0%"]
    for row in rows:
        row["matmul_gflops"] = 150.0
    assert "measured once, after the variants' shared process: 150.0" in throughput.format_table(rows, interleaved=True)


@pytest.mark.slow
def test_quick_run_writes_a_report(tmp_path):
    command = [sys.executable, "-m", "benchmarks.throughput", "--quick", "--only", "baseline,course_pipeline",
               "--out", str(tmp_path)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "[quick" in completed.stdout
    (report_file,) = tmp_path.glob("throughput-*.json")
    report = json.loads(report_file.read_text())
    assert [row["name"] for row in report["variants"]] == ["baseline", "course_pipeline"]
    for row in report["variants"]:
        assert row["train_images_per_s"] > 0 and row["train_flops_per_image"] > 0 and row["epoch_images_per_s"] > 0
        # Every timed step is recorded (quick: 1 epoch of 3), and the rate is the batch over their median.
        assert len(row["step_seconds"]) == 3 and all(seconds > 0 for seconds in row["step_seconds"])
        batch = row["variant"]["batch_size"]
        assert row["train_images_per_s"] == pytest.approx(batch / sorted(row["step_seconds"])[1])
        assert row["matmul_gflops"] > 0
    rates = [row["matmul_gflops"] for row in report["variants"]]
    assert report["matmul_gflops"] == pytest.approx(statistics.median(rates))
    assert report["quick"] is True


@pytest.mark.slow
def test_quick_interleaved_run_shares_one_process_and_one_matmul_reading(tmp_path):
    command = [sys.executable, "-m", "benchmarks.throughput", "--quick", "--interleave",
               "--only", "baseline,no_dropout", "--out", str(tmp_path)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    (report_file,) = tmp_path.glob("throughput-*.json")
    report = json.loads(report_file.read_text())
    assert report["interleaved"] is True
    baseline, no_dropout = report["variants"]
    assert (baseline["name"], no_dropout["name"]) == ("baseline", "no_dropout")
    assert no_dropout["variant"]["dropout"] == 0.0 and baseline["variant"]["dropout"] > 0
    assert len(baseline["step_seconds"]) == len(no_dropout["step_seconds"]) == 3
    assert baseline["matmul_gflops"] == no_dropout["matmul_gflops"] == report["matmul_gflops"]
