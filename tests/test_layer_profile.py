"""The layer profile: grouping, the summary's arithmetic, and one quick run end to end."""

from __future__ import annotations

import json

import pytest

from benchmarks import layer_profile


def test_layers_are_grouped_by_kind_and_convolutions_by_the_side_they_work_at():
    assert layer_profile.layer_kind("Conv2D", 56, 56) == "conv 56x56"
    assert layer_profile.layer_kind("Conv2DTranspose", 112, 56) == "transposed conv 56->112"
    assert layer_profile.layer_kind("BatchNormalization", 7, 7) == "batch norm"
    assert layer_profile.layer_kind("FusedBatchNormalization", 7, 7) == "batch norm"
    assert layer_profile.layer_kind("Activation", 7, 7) == "activation"
    assert layer_profile.layer_kind("Lambda", 7, 7) == "other"


def test_summary_adds_up_per_kind_and_compares_with_the_whole_step():
    rows = [{"kind": "conv 8x8", "ms": 30.0, "train_gflop": 3.0}, {"kind": "conv 8x8", "ms": 10.0, "train_gflop": 1.0},
            {"kind": "batch norm", "ms": 60.0, "train_gflop": 0.0}]
    summary = {group["kind"]: group for group in layer_profile.summarise(rows, step_ms=80.0, matmul_gflops=200.0)}
    conv, norm = summary["conv 8x8"], summary["batch norm"]
    assert (conv["layers"], conv["ms"], conv["share_of_layers"]) == (2, 40.0, pytest.approx(0.4))
    assert conv["gflops"] == pytest.approx(100.0) and conv["matmul_fraction"] == pytest.approx(0.5)
    assert norm["share_of_layers"] == pytest.approx(0.6) and norm["gflops"] == 0.0
    assert summary["sum of layers"]["ms"] == 100.0 and summary["sum of layers"]["gflops"] == pytest.approx(40.0)
    step = summary["whole training step"]
    assert step["share_of_layers"] == pytest.approx(0.8) and step["gflops"] == pytest.approx(50.0)
    assert list(summary)[0] == "batch norm"  # the costliest kind first


def test_channels_first_moves_the_data_format_or_the_channel_axis():
    move = layer_profile.channels_first_config
    moved = move("Conv2D", {"filters": 8, "data_format": "channels_last"})
    assert moved == {"filters": 8, "data_format": "channels_first"}
    assert move("BatchNormalization", {"axis": -1})["axis"] == 1
    assert move("Concatenate", {"axis": -1})["axis"] == 1
    assert move("Dropout", {"rate": 0.1}) == {"rate": 0.1}
    original = {"axis": -1}
    move("BatchNormalization", original)
    assert original == {"axis": -1}  # the layer's own config is left alone
    assert layer_profile.parse_args(["--channels-first"]).keras_batch_norm is True


def test_summary_without_a_whole_step_leaves_its_row_out():
    rows = [{"kind": "conv 8x8", "ms": 30.0, "train_gflop": 3.0}]
    summary = layer_profile.summarise(rows, step_ms=None, matmul_gflops=200.0)
    assert [group["kind"] for group in summary] == ["conv 8x8", "sum of layers"]


def test_bad_sizes_are_refused():
    with pytest.raises(SystemExit):
        layer_profile.parse_args(["--batch-size", "0"])


@pytest.mark.slow
def test_quick_profile_times_every_layer_and_writes_a_report(tmp_path, capsys):
    assert layer_profile.main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / layer_profile.LATEST_FILE).read_text())
    names = [row["name"] for row in report["layers"]]
    assert names[0] == "enc1_conv1" and names[-1] == "output" and len(names) == len(set(names))
    assert all(row["ms"] > 0 for row in report["layers"])
    assert all(row["train_gflop"] > 0 for row in report["layers"] if row["kind"].startswith(("conv", "transposed")))
    assert report["step_ms"] > 0 and report["matmul_gflops"] > 0
    assert "whole training step" in capsys.readouterr().out
    # The course's model, fused batch norm included: every layer lands in a named group.
    assert report["settings"]["keras_batch_norm"] is False
    assert sum(row["kind"] == "batch norm" for row in report["layers"]) == 2 * (2 + 1 + 2)  # depth 2: 5 blocks
    assert all(row["kind"] != "other" for row in report["layers"] if row["name"] != "output")


@pytest.mark.slow
def test_quick_channels_first_profile_times_every_layer_without_the_whole_step(tmp_path, capsys):
    assert layer_profile.main(["--quick", "--channels-first", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / layer_profile.LATEST_FILE).read_text())
    assert report["settings"]["channels_first"] is True and report["settings"]["keras_batch_norm"] is True
    assert report["step_ms"] is None and all(row["ms"] > 0 for row in report["layers"])
    output = capsys.readouterr().out
    assert "channels-first (NCHW)" in output and "whole training step" not in output
