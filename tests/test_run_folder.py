"""The run folder: its files, the epoch commit, starting or resuming, reading a run back."""

from __future__ import annotations

import json
import math

import pytest

from helpers.config import TrainConfig
from helpers.run_folder import (
    CONFIG_FILE,
    FINE_TUNED_DIR,
    METRICS_FILE,
    STATE_FILE,
    best_epoch_of,
    final_stage,
    load_run,
    new_run_dir,
    prepare_run_dir,
    run_dir_status,
    settle_run_dir,
)


def test_best_epoch_follows_the_monitor():
    history = [{"epoch": 1, "val_loss": 0.5, "val_score": 0.6}, {"epoch": 2, "val_loss": 0.3, "val_score": 0.7},
               {"epoch": 3, "val_loss": 0.35, "val_score": 0.75}, {"epoch": 4, "val_loss": math.nan, "val_score": 0.75}]
    assert best_epoch_of(history, "val_loss") == 2
    assert best_epoch_of(history, "val_score") == 3
    with pytest.raises(ValueError, match="empty"):
        best_epoch_of([], "val_loss")
    with pytest.raises(ValueError, match="finite val_score"):
        best_epoch_of([{"epoch": 1, "val_loss": 0.5}], "val_score")
    with pytest.raises(ValueError, match="monitor"):
        best_epoch_of(history, "loss")


def test_new_run_dirs_never_collide(tmp_path):
    first, second = new_run_dir(tmp_path, "x"), new_run_dir(tmp_path, "x")
    assert first != second and first.is_dir() and second.is_dir()


def test_finished_run_is_never_overwritten(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / METRICS_FILE).write_text("{}")
    with pytest.raises(FileExistsError, match="finished run"):
        prepare_run_dir(TrainConfig(), run, tmp_path)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        prepare_run_dir(TrainConfig(), stray, tmp_path)
    assert (stray / "notes.txt").read_text() == "mine"


def test_the_final_stage_is_the_fine_tuned_run_inside_a_run_unless_it_scores_less(tmp_path):
    run = tmp_path / "run"
    (run / FINE_TUNED_DIR).mkdir(parents=True)
    (run / METRICS_FILE).write_text(json.dumps({"val_score": 0.70}))
    assert final_stage(run) == run  # the second stage has not finished
    (run / FINE_TUNED_DIR / METRICS_FILE).write_text(json.dumps({"val_score": 0.75}))
    assert final_stage(run) == run / FINE_TUNED_DIR
    assert final_stage(run / FINE_TUNED_DIR) == run / FINE_TUNED_DIR
    (run / FINE_TUNED_DIR / METRICS_FILE).write_text(json.dumps({"val_score": 0.65}))
    assert final_stage(run) == run  # fine-tuning made it worse: the first stage's model stays


def test_settling_keeps_what_the_state_committed_and_drops_the_rest(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.epoch-0003.keras", "last.epoch-0003.keras", "last.epoch-0004.keras", "state.tmp.json",
                 "last.tmp.keras"):
        (run / name).write_text(name)
    history = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}, {"epoch": 3, "loss": 0.3}]
    settle_run_dir(run, {"completed_epochs": 3, "history": history})
    assert sorted(p.name for p in run.iterdir()) == ["best.keras", "history.csv", "last.keras"]
    assert (run / "best.keras").read_text() == "best.epoch-0003.keras"
    assert [int(row["epoch"]) for row in load_run_history(run)] == [1, 2, 3]


def load_run_history(run):
    from helpers.run_folder import read_history

    return read_history(run)


def test_an_older_run_without_history_in_its_state_drops_rows_beyond_the_commit(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n2,0.4\n3,0.3\n")
    settle_run_dir(run, {"completed_epochs": 2})
    assert [int(row["epoch"]) for row in load_run_history(run)] == [1, 2]


def test_run_dir_status_says_what_training_will_do(tmp_path):
    assert run_dir_status("") == "new run" and run_dir_status(tmp_path / "new") == "new run"
    run = tmp_path / "run"
    run.mkdir()
    (run / CONFIG_FILE).write_text(json.dumps(TrainConfig(epochs=3).to_json()))
    assert run_dir_status(run) == "new run (its first epoch never finished)"
    assert run_dir_status(run, TrainConfig(epochs=3, seed=4)) == "new run (its first epoch never finished)"
    (run / STATE_FILE).write_text(json.dumps({"completed_epochs": 2}))
    assert run_dir_status(run) == "resume after epoch 2"
    with pytest.raises(ValueError, match="different config.*seed"):
        run_dir_status(run, TrainConfig(epochs=3, seed=4))


@pytest.mark.parametrize(("schedule", "more_epochs_resume"), [("plateau", True), ("cosine", False)])
def test_more_epochs_resume_a_plateau_run_but_not_a_cosine_one(tmp_path, schedule, more_epochs_resume):
    # A cosine schedule reaches 0 at the EPOCHS it started with: more epochs would train at a rate of 0.
    run = tmp_path / "run"
    run.mkdir()
    (run / CONFIG_FILE).write_text(json.dumps(TrainConfig(epochs=3, lr_schedule=schedule).to_json()))
    (run / STATE_FILE).write_text(json.dumps({"completed_epochs": 2}))
    longer = TrainConfig(epochs=5, lr_schedule=schedule)
    if more_epochs_resume:
        assert run_dir_status(run, longer) == "resume after epoch 2"
    else:
        with pytest.raises(ValueError, match="different config.*epochs"):
            run_dir_status(run, longer)
    assert run_dir_status(run, TrainConfig(epochs=3, lr_schedule=schedule)) == "resume after epoch 2"


def test_load_run_reads_a_run_as_typed_values(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        load_run(run)
    (run / CONFIG_FILE).write_text(json.dumps(TrainConfig(epochs=3, loss="dice").to_json()))
    (run / "history.csv").write_text("epoch,loss\n1,0.5\n")
    unfinished = load_run(run)
    assert unfinished.config.loss == "dice" and unfinished.history == [{"epoch": 1.0, "loss": 0.5}]
    assert not unfinished.finished and unfinished.figures_dir == run / "figures"
    (run / METRICS_FILE).write_text(json.dumps({"val_score": 0.7}))
    assert load_run(run).finished and load_run(run).metrics["val_score"] == 0.7
