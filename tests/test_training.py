"""Training: run folders, learning on synthetic data, save/reload, NaN stop, kill and resume."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config

from helpers.config import TrainConfig
from helpers.run_folder import BEST_MODEL_FILE, METRICS_FILE, STATE_FILE, read_history
from helpers.training import TrainingDivergedError, resume, train


@pytest.mark.parametrize(("monitor", "stops"), [("val_score", True), ("val_loss", False)])
def test_early_stopping_follows_the_monitor(tmp_path, monitor, stops):
    import keras

    from helpers.callbacks import ResumableEarlyStopping

    early = ResumableEarlyStopping(TrainConfig(monitor=monitor, early_stopping_patience=2), state=None)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False
    early.set_model(model)
    early.on_train_begin()
    # The score peaks at epoch 2 while the loss keeps falling: only a score monitor sees a stall.
    for epoch, (score, loss) in enumerate([(0.5, 1.0), (0.6, 0.9), (0.55, 0.8), (0.58, 0.7)]):
        early.on_epoch_end(epoch, {"val_score": score, "val_loss": loss})
    assert model.stop_training is stops


@pytest.mark.slow
def test_tiny_model_learns_and_its_run_folder_is_complete(synthetic_data_dir, tmp_path):
    result = train(tiny_config(synthetic_data_dir, epochs=4), run_root=tmp_path)
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
    for name in ("config.json", "history.csv", BEST_MODEL_FILE, "last.keras", METRICS_FILE,
                 "figures/learning_curves.png"):
        assert (result.run_dir / name).exists(), name
    metrics = json.loads((result.run_dir / METRICS_FILE).read_text())
    for key in ("val_score", "val_score_tta", "val_score_tta_threshold"):
        assert 0.0 <= metrics[key] <= 1.0
    assert {"val_score", "val_loss", "learning_rate", "train_seconds"} <= set(result.history[0])
    # The kept model is the epoch with the best validation score, and scores as it did then.
    scores = [row["val_score"] for row in result.history]
    assert metrics["monitor"] == "val_score" and metrics["best_epoch"] == int(np.argmax(scores)) + 1
    assert metrics["val_score"] == pytest.approx(max(scores), abs=1e-6)


@pytest.mark.slow
def test_a_val_loss_monitor_keeps_the_lowest_validation_loss(synthetic_data_dir, tmp_path):
    result = train(tiny_config(synthetic_data_dir, epochs=3, monitor="val_loss"), run_root=tmp_path)
    val_losses = [row["val_loss"] for row in result.history]
    assert result.metrics["best_epoch"] == int(np.argmin(val_losses)) + 1
    best = result.history[result.metrics["best_epoch"] - 1]
    assert result.metrics["val_score"] == pytest.approx(best["val_score"], abs=1e-6)


@pytest.mark.slow
def test_saved_model_reloads_with_identical_predictions(synthetic_data_dir, tmp_path):
    from helpers.run_folder import load_model

    result = train(tiny_config(synthetic_data_dir, epochs=1), run_root=tmp_path)
    batch = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    reloaded = load_model(result.run_dir / BEST_MODEL_FILE)
    np.testing.assert_allclose(result.model.predict(batch, verbose=0), reloaded.predict(batch, verbose=0),
                               rtol=1e-5, atol=1e-6)
    # A fresh process (notebook 05, 06) has imported nothing that registers the custom layers yet.
    script = "import sys; from helpers.run_folder import load_model; print(load_model(sys.argv[1]).count_params())"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    loaded = subprocess.run([sys.executable, "-c", script, str(result.run_dir / BEST_MODEL_FILE)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert int(loaded.stdout.split()[-1]) == result.model.count_params()


@pytest.mark.slow
def test_nan_loss_stops_with_a_clear_message_and_keeps_the_run(synthetic_data_dir, tmp_path):
    from helpers.prepared_data import prepare_data

    config = tiny_config(synthetic_data_dir, epochs=3)
    data = prepare_data(config, progress=False)
    data.x_train[:] = np.nan  # a corrupt input poisons the very first batch, as a diverging step would
    with pytest.raises(TrainingDivergedError, match="NaN.*LEARNING_RATE"):
        train(config, run_root=tmp_path, data=data)
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "config.json").exists()
    assert not (run_dir / METRICS_FILE).exists()


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_completed_epoch(synthetic_data_dir, tmp_path):
    run_dir = tmp_path / "run"
    config = tiny_config(synthetic_data_dir, epochs=4, n_images=120)
    script = (
        "import json, sys; from helpers.config import TrainConfig; from helpers.training import train; "
        "train(TrainConfig.from_json(json.loads(sys.argv[1])), run_dir=sys.argv[2])"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-c", script, json.dumps(config.to_json()), str(run_dir)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        state_file = run_dir / STATE_FILE
        if state_file.exists() and json.loads(state_file.read_text())["completed_epochs"] >= 1:
            break
        time.sleep(0.05)
    assert process.poll() is None, f"training ended before it could be killed: {process.stderr.read()[-2000:]}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    completed = json.loads((run_dir / STATE_FILE).read_text())["completed_epochs"]
    assert 1 <= completed < 4
    assert not (run_dir / METRICS_FILE).exists()

    result = resume(run_dir)
    epochs = [int(row["epoch"]) for row in read_history(run_dir)]
    assert epochs == list(range(1, len(epochs) + 1)) and epochs[-1] == 4
    assert (run_dir / METRICS_FILE).exists()
    assert 0.0 <= result.metrics["val_score"] <= 1.0


@pytest.mark.slow
def test_a_fine_tuning_run_starts_from_the_best_weights_of_an_earlier_run(synthetic_data_dir, tmp_path):
    from helpers.config import fine_tune_config
    from helpers.run_folder import load_model
    from helpers.training import check_init_source

    # The first stage with Keras' batch norm, the second with the fused one: both hold the same weights.
    first_config = tiny_config(synthetic_data_dir, epochs=2, fused_batch_norm=False)
    first = train(first_config, run_dir=tmp_path / "bce")
    config = fine_tune_config(first_config, first.run_dir, epochs=1, learning_rate=1e-9)
    assert (config.loss, config.epochs, config.init_from) == ("lovasz", 1, str(first.run_dir))
    assert (config.seed, config.n_images, config.base_filters) == (first_config.seed, first_config.n_images, 4)
    assert check_init_source(config, tmp_path / "lovasz") == first.run_dir / BEST_MODEL_FILE
    second = train(dataclasses.replace(config, fused_batch_norm=True), run_dir=tmp_path / "lovasz")
    # With a negligible learning rate the weights stay the earlier run's (batch norm statistics aside).
    kernels = [w for w in first.model.weights if "kernel" in w.path]
    tuned = {w.path: w for w in load_model(second.run_dir / BEST_MODEL_FILE).weights}
    for weight in kernels:
        np.testing.assert_allclose(np.asarray(tuned[weight.path]), np.asarray(weight), atol=1e-6)
    assert json.loads((second.run_dir / "config.json").read_text())["init_from"] == str(first.run_dir)
    assert (first.run_dir / METRICS_FILE).exists()  # the source run is read, never changed


@pytest.mark.parametrize(("change", "message"), [
    ({"seed": 1}, "another split.*seed"),
    ({"n_images": 64}, "another split.*n_images"),
    ({"val_fraction": 0.2}, "another split.*val_fraction"),
    ({"base_filters": 8}, "another network.*base_filters"),
    ({"depth": 3}, "another network.*depth"),
])
def test_fine_tuning_refuses_a_run_with_another_split_or_network(synthetic_data_dir, tmp_path, change, message):
    from helpers.run_folder import CONFIG_FILE
    from helpers.training import check_init_source

    source = tmp_path / "source"
    source.mkdir()
    (source / CONFIG_FILE).write_text(json.dumps(tiny_config(synthetic_data_dir).to_json()))
    (source / BEST_MODEL_FILE).write_bytes(b"")
    config = tiny_config(synthetic_data_dir, init_from=str(source), **change)
    with pytest.raises(ValueError, match=f"INIT_FROM .*{message}"):
        check_init_source(config, tmp_path / "new")
    with pytest.raises(ValueError, match="INIT_FROM"):
        train(config, run_dir=tmp_path / "new")
    assert not (tmp_path / "new").exists()  # refused before anything was written


def test_fine_tuning_refuses_a_folder_that_is_not_a_run_or_is_its_own(synthetic_data_dir, tmp_path):
    from helpers.training import check_init_source

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"INIT_FROM .*empty.*not a run folder"):
        check_init_source(tiny_config(synthetic_data_dir, init_from=str(tmp_path / "empty")), None)
    with pytest.raises(ValueError, match="INIT_FROM .*own folder"):
        check_init_source(tiny_config(synthetic_data_dir, init_from=str(tmp_path / "empty")), tmp_path / "empty")


@pytest.mark.slow
def test_the_command_line_trains_both_stages_and_goes_on_after_a_finished_first(synthetic_data_dir, tmp_path):
    from helpers.config import FINE_TUNE_EPOCHS
    from helpers.run_folder import FINE_TUNED_DIR
    from helpers.training import main, parse_args

    config, run_dir, run_root, stage_two = parse_args(["--epochs", "3"])
    assert (config.epochs, run_dir, run_root) == (3, None, "runs")
    assert stage_two == {"epochs": FINE_TUNE_EPOCHS, "loss": "lovasz", "learning_rate": 1e-4}
    with pytest.raises(SystemExit):
        parse_args(["--finetune-epochs", "-1"])
    run = tmp_path / "run"
    tiny = ["--data-dir", str(synthetic_data_dir), "--n-images", "96", "--img-size", "32", "--sizing", "resize",
            "--depth", "2", "--base-filters", "4", "--batch-size", "16", "--epochs", "1", "--progress", "false",
            "--run-dir", str(run)]
    first = main([*tiny, "--finetune-epochs", "0"])
    assert first.run_dir == run and not (run / FINE_TUNED_DIR).exists()
    with pytest.raises(ValueError, match="first stage with a different config.*learning_rate"):
        main([*tiny, "--learning-rate", "0.5", "--finetune-epochs", "1"])
    second = main([*tiny, "--finetune-epochs", "1"])  # the first stage is done: only the second trains
    assert second.run_dir == run / FINE_TUNED_DIR and len(second.history) == 1
    saved = json.loads((second.run_dir / "config.json").read_text())
    assert (saved["loss"], saved["init_from"]) == ("lovasz", str(run))
    with pytest.raises(FileExistsError, match="fine_tuned holds a finished run"):
        main([*tiny, "--finetune-epochs", "1"])


# ----------------------------------------------------------------------------------------------
# Faults and mistakes: each ends in one clear error, or in a run folder that resumes consistently


class SimulatedKill(BaseException):
    """Raised where a kill would hit: not an Exception, so nothing on the way catches it."""


def kill_at_write(monkeypatch, file_name: str, epoch: int) -> dict:
    """Make the first os.replace onto file_name at the end of epoch `epoch` (1-based) die like a kill.

    Every file of a run folder is written to a temporary name and renamed: dying just before the rename is a
    kill at any instant between two writes (what came before is on disk, what comes after is not).
    """
    import helpers.callbacks as callbacks

    real_replace, seen = os.replace, {"killed": False}

    def replace(source, destination, *args, **kwargs):
        if Path(destination).name == file_name and not seen["killed"]:
            row_epoch = seen["current_epoch"]
            if row_epoch == epoch:
                seen["killed"] = True
                raise SimulatedKill(f"killed before {file_name} of epoch {epoch}")
        return real_replace(source, destination, *args, **kwargs)

    real_pending = callbacks.pending_model

    def pending(run_dir, name, epoch_number):
        seen["current_epoch"] = epoch_number
        return real_pending(run_dir, name, epoch_number)

    monkeypatch.setattr(callbacks, "pending_model", pending)
    monkeypatch.setattr(os, "replace", replace)
    return seen


def validation_score_of(model_path: Path, config: TrainConfig) -> float:
    """The validation score of a saved model, computed as the run's epoch-end callback computes it."""
    from helpers.metrics import competition_score
    from helpers.prepared_data import prepare_data
    from helpers.run_folder import load_model

    data = prepare_data(config, progress=False)
    probabilities = load_model(model_path).predict(data.x_val, batch_size=config.batch_size, verbose=0)
    native = data.sizing.to_native(np.asarray(probabilities, dtype=np.float32)[..., 0])
    return float(competition_score(data.val_masks_native, native > 0.5))


def every_epoch_improves(monkeypatch) -> None:
    """Make every finite epoch count as the best so far, for the checkpoint and for the run's summary alike."""
    import helpers.callbacks
    import helpers.run_folder

    for module in (helpers.callbacks, helpers.run_folder):
        monkeypatch.setattr(module, "is_improvement", lambda value, best, monitor: math.isfinite(value))


@pytest.mark.slow
@pytest.mark.parametrize("file_name", ["best.epoch-0002.keras", "last.epoch-0002.keras", "state.json", "best.keras",
                                       "last.keras", "history.csv"])
def test_a_kill_at_any_write_of_an_epoch_end_resumes_consistently(synthetic_data_dir, tmp_path, monkeypatch,
                                                                   file_name):
    # Every epoch improves, so that epoch 2's end writes a best model too; float32, so scores compare exactly.
    every_epoch_improves(monkeypatch)
    config = tiny_config(synthetic_data_dir, epochs=2, n_images=48, mixed_precision="off")
    run_dir = tmp_path / "run"
    seen = kill_at_write(monkeypatch, file_name, epoch=2)
    with pytest.raises(SimulatedKill):
        train(config, run_dir=run_dir)
    assert seen["killed"] and not (run_dir / METRICS_FILE).exists()
    monkeypatch.undo()
    every_epoch_improves(monkeypatch)

    result = train(config, run_dir=run_dir)  # resumes
    epochs = [int(row["epoch"]) for row in read_history(run_dir)]
    state = json.loads((run_dir / STATE_FILE).read_text())
    assert epochs == [1, 2] and result.metrics["epochs_run"] == 2 and state["completed_epochs"] == 2
    best_row = next(row for row in result.history if int(row["epoch"]) == result.metrics["best_epoch"])
    assert state["best_value"] == pytest.approx(best_row["val_score"])
    assert validation_score_of(run_dir / BEST_MODEL_FILE, config) == pytest.approx(best_row["val_score"], abs=1e-9)
    assert sorted(path.name for path in run_dir.glob("*.keras")) == ["best.keras", "last.keras"]
    assert not list(run_dir.glob("*.tmp"))


@pytest.mark.slow
def test_resuming_refuses_a_data_folder_that_now_gives_another_split(tmp_path, monkeypatch):
    import shutil

    from helpers.prepared_data import prepare_data
    from helpers.run_folder import SplitChangedError, check_split
    from helpers.synthetic import write_synthetic_dataset

    data_dir, extra = tmp_path / "data", tmp_path / "extra"
    write_synthetic_dataset(data_dir, n_train=40, n_test=1, seed=0, progress=False)
    write_synthetic_dataset(extra, n_train=24, n_test=1, seed=5, progress=False)
    config = tiny_config(data_dir, epochs=2, n_images=0)
    run_dir = tmp_path / "run"
    kill_at_write(monkeypatch, "state.json", epoch=2)
    with pytest.raises(SimulatedKill):
        train(config, run_dir=run_dir)
    monkeypatch.undo()
    for kind in ("images", "masks"):
        for path in (extra / "train" / kind).iterdir():
            shutil.copy(path, data_dir / "train" / kind / path.name)
    (data_dir / "train.csv").unlink()  # it lists the 40 pairs only
    with pytest.raises(SplitChangedError, match=r"no longer gives the split.*24 section\(s\) added"):
        train(config, run_dir=run_dir)
    assert json.loads((run_dir / STATE_FILE).read_text())["completed_epochs"] == 1  # nothing touched
    with pytest.raises(SplitChangedError, match="now in validation|now in training|added"):
        check_split(run_dir, prepare_data(config, progress=False).split())  # what notebook 05 runs


def test_command_line_booleans_accept_the_usual_words_and_refuse_the_rest(capsys):
    from helpers.training import parse_args

    for word, value in (("true", True), ("Yes", True), ("ON", True), ("1", True), ("false", False), ("No", False),
                        ("off", False), ("0", False)):
        assert parse_args(["--augment", word])[0].augment is value
    for flag, word in (("--augment", "Flase"), ("--batch-norm", "ture"), ("--augment", "y"), ("--progress", "")):
        with pytest.raises(SystemExit) as exit_info:
            parse_args([flag, word])
        assert exit_info.value.code == 2
        assert f"argument {flag}: {word!r} is not a boolean" in capsys.readouterr().err


@pytest.mark.slow
def test_a_relative_data_dir_is_stored_resolved(synthetic_data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(synthetic_data_dir, tmp_path)
    result = train(tiny_config(Path(relative), epochs=1, n_images=32), run_dir="run")
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["data_dir"] == str(synthetic_data_dir.resolve())
    assert json.loads((result.run_dir / "split.json").read_text())["data_dir"] == str(synthetic_data_dir.resolve())


@pytest.mark.slow
def test_a_first_attempt_that_failed_before_training_does_not_block_the_corrected_retry(synthetic_data_dir,
                                                                                         tmp_path):
    from helpers.errors import DataError
    from helpers.run_folder import CONFIG_FILE

    run_dir = tmp_path / "run"
    with pytest.raises(DataError, match="does not exist"):
        train(tiny_config(tmp_path / "no-such-data", epochs=1), run_dir=run_dir)
    assert not run_dir.exists()  # refused before anything was written
    # A folder an older version left behind: the config of an attempt that never completed an epoch.
    run_dir.mkdir()
    (run_dir / CONFIG_FILE).write_text(json.dumps(tiny_config(tmp_path / "no-such-data").to_json()))
    result = train(tiny_config(synthetic_data_dir, epochs=1, n_images=32), run_dir=run_dir)
    assert json.loads((run_dir / CONFIG_FILE).read_text())["data_dir"] == str(synthetic_data_dir)
    assert result.metrics["epochs_run"] == 1


def test_an_unwritable_run_folder_is_named_with_what_to_do(synthetic_data_dir, tmp_path, read_only_dir):
    (tmp_path / "locked").mkdir()
    locked = read_only_dir(tmp_path / "locked")
    config = tiny_config(synthetic_data_dir, epochs=1, n_images=32)
    with pytest.raises(PermissionError, match=r"RUN_DIR .*locked/run cannot be written .*choose a RUN_DIR"):
        train(config, run_dir=locked / "run")
    with pytest.raises(PermissionError, match=r"RUN_ROOT .*locked cannot be written"):
        train(config, run_root=locked)
    assert not any(locked.iterdir())
