"""The run folder: where a training run keeps its config, split, history, state, models and metrics.

    RUN_DIR/config.json    the TrainConfig            RUN_DIR/best.keras   the best epoch's model
    RUN_DIR/split.json     the ids trained and        RUN_DIR/last.keras   the last epoch's (to resume)
                           validated on               RUN_DIR/metrics.json written when the run finished
    RUN_DIR/state.json     what resuming needs        RUN_DIR/figures/     its figures
    RUN_DIR/history.csv    one row per epoch          RUN_DIR/fine_tuned/  the second stage, a run folder too

Every file is written to a temporary name and renamed into place, and an epoch counts only once state.json
says so (settle_run_dir): a kill at any instant leaves a folder that resumes consistently. Read a run with
load_run; nothing here imports TensorFlow until a model is loaded.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from helpers.config import MONITOR_MODES, TrainConfig, is_improvement
from helpers.files import replaced_atomically

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
BEST_MODEL_FILE = "best.keras"
LAST_MODEL_FILE = "last.keras"
METRICS_FILE = "metrics.json"
FIGURES_DIR = "figures"
FINE_TUNED_DIR = "fine_tuned"
_T = TypeVar("_T")


class SplitChangedError(ValueError):
    """The data folder no longer gives the split a run recorded; the message says what changed."""


# ----------------------------------------------------------------------------------------------
# Writing: every file through a temporary name


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write payload as JSON (NumPy numbers and paths converted) through a temporary file."""
    with replaced_atomically(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default))


def save_model_atomic(model: Any, path: Path) -> None:
    """Save a Keras model through a temporary file."""
    with replaced_atomically(path) as tmp:
        model.save(tmp)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_history(run_dir: str | Path, history: list[dict[str, float]]) -> Path:
    """Write the per-epoch history as CSV (columns: the union of keys, epoch first)."""
    path = Path(run_dir) / HISTORY_FILE
    keys = sorted({key for row in history for key in row} - {"epoch"})
    with replaced_atomically(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["epoch", *keys])
        writer.writeheader()
        writer.writerows(history)
    return path


def new_run_dir(run_root: str | Path, name: str = "") -> Path:
    """Create a fresh, uniquely named run folder under run_root (never reuses an existing one)."""
    root = Path(run_root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{name}" if name else stamp
    for attempt in range(1000):
        candidate = root / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder under {root}")


# ----------------------------------------------------------------------------------------------
# Committing an epoch


def pending_model(run_dir: Path, name: str, epoch: int) -> Path:
    """Where an epoch's model waits until state.json commits the epoch (best.keras -> best.epoch-0007.keras)."""
    stem, suffix = name.rsplit(".", 1)
    return run_dir / f"{stem}.epoch-{epoch:04d}.{suffix}"


def settle_run_dir(run_dir: str | Path, state: dict[str, Any] | None) -> None:
    """Finish, or undo, an epoch end that a kill interrupted: state.json alone says which epochs are complete.

    An epoch ends in three steps: its models are written under epoch-stamped names, state.json is replaced
    (the commit, one atomic rename), then the models are renamed into place and history.csv is written from
    the state. Whatever instant a kill hits, what it leaves is either before the commit (thrown away here, and
    the epoch runs again) or after it (put in place here), so the history, the best model and the recorded best
    always belong together.
    """
    run_dir = Path(run_dir)
    committed = state["completed_epochs"] if state else 0
    for name in (BEST_MODEL_FILE, LAST_MODEL_FILE):
        pending = pending_model(run_dir, name, committed)
        if committed and pending.exists():
            os.replace(pending, run_dir / name)
    leftovers = [path for name in (BEST_MODEL_FILE, LAST_MODEL_FILE)
                 for path in run_dir.glob(name.replace(".keras", ".*.keras"))]
    leftovers += list(run_dir.glob("*.tmp.*"))  # a write that a kill cut short before its rename
    for path in leftovers:
        path.unlink(missing_ok=True)
    if state is None:
        return
    if "history" in state:
        history = state["history"]
    else:  # runs saved before the state held the history: drop what a kill left beyond the last commit
        history = list({int(row["epoch"]): row for row in read_history(run_dir) if row["epoch"] <= committed}.values())
    write_history(run_dir, history)


# ----------------------------------------------------------------------------------------------
# Starting or resuming in a folder


def check_run_dir(config: TrainConfig | None, run_dir: str | Path | None) -> Path | None:
    """The run folder training will use (None: a new one under RUN_ROOT); raises, writing nothing, if it cannot.

    A folder whose first attempt stopped before an epoch completed (bad data, say) holds nothing to keep, so it
    starts again with the new config; one with a completed epoch resumes only with the same config (not
    compared when config is None).
    """
    if run_dir is None or str(run_dir) == "":
        return None
    path = Path(run_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"RUN_DIR {path} is a file; choose a folder")
    if not path.exists():
        return path
    if (path / METRICS_FILE).exists():
        raise FileExistsError(f"RUN_DIR {path} holds a finished run; choose a new RUN_DIR (runs are never overwritten)")
    if (path / CONFIG_FILE).exists():
        differences = config_differences(config, path) if config is not None else []
        if differences and (path / STATE_FILE).exists():
            raise ValueError(f"RUN_DIR {path} holds an interrupted run with a different config ({differences}); "
                             "resume it with the same parameters or choose a new RUN_DIR")
        return path
    if any(path.iterdir()):
        raise FileExistsError(f"RUN_DIR {path} is not empty and is not a run folder; choose a new RUN_DIR")
    return path


def run_dir_status(run_dir: str | Path | None, config: TrainConfig | None = None) -> str:
    """What training in RUN_DIR will do ("new run", "resume after epoch k", ...); raises where it would refuse."""
    path = check_run_dir(config, run_dir)
    state = read_run_state(path) if path is not None and path.is_dir() else None
    if state:
        return f"resume after epoch {state['completed_epochs']}"
    if path is not None and (path / CONFIG_FILE).exists():
        return "new run (its first epoch never finished)"
    return "new run"


def prepare_run_dir(config: TrainConfig, run_dir: str | Path | None, run_root: str | Path) -> tuple[Path, dict | None]:
    """A new run folder, or the given one: empty (fresh), unfinished (resume, settled) or finished (refused)."""
    path = check_run_dir(config, run_dir)
    if path is None:
        return writing(lambda: new_run_dir(run_root), "RUN_ROOT", Path(run_root)), None
    writing(lambda: path.mkdir(parents=True, exist_ok=True), "RUN_DIR", path)
    state = read_run_state(path)
    writing(lambda: settle_run_dir(path, state), "RUN_DIR", path)
    return path, state


def writing(action: Callable[[], _T], name: str, path: Path) -> _T:
    """Run a write into a run folder, turning the OS's error into one that names the parameter and the fix."""
    try:
        return action()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise PermissionError(f"{name} {path} cannot be written ({reason}); "
                              f"choose a {name} in a folder you can write to") from error


def config_differences(config: TrainConfig, run_dir: Path) -> list[str]:
    """The fields in which config differs from the one saved in run_dir, but progress, and epochs on a plateau.

    A plateau schedule lets an interrupted run go on for more epochs; a cosine schedule was laid out over EPOCHS
    when the run started (its rate reaches 0 at the last step), so there EPOCHS must stay as it was.
    """
    previous = read_config(run_dir).with_absolute_paths()
    free = ("progress", "epochs") if previous.lr_schedule == "plateau" else ("progress",)
    return sorted(k for k, v in dataclasses.asdict(config.with_absolute_paths()).items()
                  if getattr(previous, k) != v and k not in free)


# ----------------------------------------------------------------------------------------------
# The split a run trained on


def split_changes(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a recorded split and the current one, in words (empty when they agree)."""
    old_train, old_val = set(recorded["train_ids"]), set(recorded["val_ids"])
    new_train, new_val = set(current["train_ids"]), set(current["val_ids"])
    differences = [
        (sorted((new_train | new_val) - (old_train | old_val)), "section(s) added"),
        (sorted((old_train | old_val) - (new_train | new_val)), "section(s) gone"),
        (sorted(new_val & old_train), "of the run's training sections now in validation"),
        (sorted(new_train & old_val), "of the run's validation sections now in training"),
    ]
    return [f"{len(ids)} {what} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
            for ids, what in differences if ids]


def check_split(run_dir: str | Path, current: dict[str, Any]) -> None:
    """Refuse a split (PreparedData.split()) that is not the one the run in run_dir recorded, saying what changed."""
    path = Path(run_dir) / SPLIT_FILE
    recorded = json.loads(path.read_text()) if path.is_file() else None  # None: saved before splits were recorded
    changes = split_changes(recorded, current) if recorded else []
    if changes:
        raise SplitChangedError(
            f"the data in {current['data_dir']} no longer gives the split that the run in {run_dir} was trained on: "
            f"{'; '.join(changes)}. Its validation score would be measured partly on sections it trained on. "
            "Use the data folder as it was when the run started, or start a new run on the data as it is now"
        )


# ----------------------------------------------------------------------------------------------
# Reading


def read_config(run_dir: str | Path) -> TrainConfig:
    """The config a run was trained with."""
    return TrainConfig.from_json(json.loads((Path(run_dir) / CONFIG_FILE).read_text()))


def read_run_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The resume state of a run folder, or None where no epoch has completed."""
    path = Path(run_dir) / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def read_history(run_dir: str | Path) -> list[dict[str, float]]:
    """The per-epoch history a run folder holds (an empty list before the first epoch)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def best_epoch_of(history: list[dict[str, float]], monitor: str = "val_score") -> int:
    """The epoch number (1-based, as in history.csv) with the best monitored value (first of ties)."""
    if monitor not in MONITOR_MODES:
        raise ValueError(f"monitor must be one of {tuple(MONITOR_MODES)}; got {monitor!r}")
    if not history:
        raise ValueError("the history is empty: no epoch has completed")
    best_index, best = None, math.nan
    for index, row in enumerate(history):
        if is_improvement(row.get(monitor, math.nan), best, monitor):
            best_index, best = index, row[monitor]
    if best_index is None:
        raise ValueError(f"no epoch in the history has a finite {monitor}")
    return int(history[best_index].get("epoch", best_index + 1))


def load_model(path: str | Path) -> Any:
    """Load a model saved by a run (custom losses, metrics and layers included)."""
    import keras

    import helpers.losses  # noqa: F401  (registers the custom losses for deserialisation)
    import helpers.metrics  # noqa: F401  (registers the custom metrics)
    import helpers.model  # noqa: F401  (registers FusedBatchNormalization)

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}: train a run first (notebook 04) or fix RUN_DIR")
    return keras.models.load_model(path)


@dataclass(frozen=True)
class Run:
    """A run folder, read: its config, history and (once finished) metrics; its models load on demand."""

    folder: Path
    config: TrainConfig
    history: list[dict[str, float]]
    metrics: dict[str, Any]  # empty until the run finished

    @property
    def finished(self) -> bool:
        """True once the run wrote its metrics."""
        return bool(self.metrics)

    @property
    def figures_dir(self) -> Path:
        """Where the run's figures go."""
        return self.folder / FIGURES_DIR

    def load_best_model(self) -> Any:
        """The model of the run's best epoch."""
        return load_model(self.folder / BEST_MODEL_FILE)


def load_run(run_dir: str | Path) -> Run:
    """Read a run folder (finished or not) written by training."""
    folder = Path(run_dir)
    if not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not a run folder (no {CONFIG_FILE}): give a folder written by training")
    metrics_file = folder / METRICS_FILE
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return Run(folder=folder, config=read_config(folder), history=read_history(folder), metrics=metrics)


def final_stage(run_dir: str | Path) -> Path:
    """The run's fine-tuned second stage when it finished and scores at least as well, else the run itself."""
    first, tuned = Path(run_dir), Path(run_dir) / FINE_TUNED_DIR
    if not (tuned / METRICS_FILE).is_file():
        return first
    if not (first / METRICS_FILE).is_file():
        return tuned

    def score(folder: Path) -> float:
        return float(json.loads((folder / METRICS_FILE).read_text()).get("val_score", -math.inf))

    # Chosen on the validation set like the epochs themselves: fine-tuning never makes the kept model worse on
    # the validation sections that chose it (on others it can), and the score reported is optimistic for it.
    return tuned if score(tuned) >= score(first) else first


def find_latest_run(run_root: str | Path) -> Path:
    """The most recent run folder under run_root that holds a best model."""
    root = Path(run_root)
    runs = sorted(p for p in root.glob("*") if (p / BEST_MODEL_FILE).exists()) if root.is_dir() else []
    if not runs:
        raise FileNotFoundError(
            f"no trained run found under {root.resolve()}: run notebook 04 first, or set RUN_DIR to a run folder"
        )
    return runs[-1]
