"""The callbacks a training run adds to Keras' fit: the competition score, a resumable schedule, the run folder,
and snapshots of a few sections' predictions as training goes.

Their order matters, and run_callbacks keeps it: the score joins an epoch's logs first, so that the
learning-rate schedule, early stopping and the checkpoint all read it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from helpers.config import MONITOR_MODES, SCORE_THRESHOLD, TrainConfig, is_improvement
from helpers.metrics import competition_score
from helpers.run_folder import (
    BEST_MODEL_FILE,
    LAST_MODEL_FILE,
    STATE_FILE,
    pending_model,
    read_history,
    save_model_atomic,
    settle_run_dir,
    write_json_atomic,
)
from helpers.sizing import Sizing


class ValidationScore(keras.callbacks.Callback):
    """Adds the competition score of the validation set at 101x101 to each epoch's logs, and its timings.

    train_seconds ends where Keras starts its validation pass; eval_seconds is the scoring's own time.
    """

    def __init__(self, images: np.ndarray, masks_native: np.ndarray, sizing: Sizing, batch_size: int):
        super().__init__()
        self.images, self.masks_native, self.sizing, self.batch_size = images, masks_native, sizing, batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._train_seconds = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._train_seconds is None:  # Keras' validation pass: training is over for this epoch
            self._train_seconds = self._training_done()

    def _training_done(self) -> float:
        keras.ops.convert_to_numpy(self.model.optimizer.iterations)  # waits for queued steps (a GPU is async)
        return time.perf_counter() - self._started

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}  # the same dict the later callbacks read
        logs["train_seconds"] = self._train_seconds if self._train_seconds is not None else self._training_done()
        started = time.perf_counter()
        probabilities = self.model.predict(self.images, batch_size=self.batch_size, verbose=0)
        native = self.sizing.to_native(np.asarray(probabilities, dtype=np.float32)[..., 0])
        logs["val_score"] = float(competition_score(self.masks_native, native > SCORE_THRESHOLD))
        logs["eval_seconds"] = time.perf_counter() - started


class PredictionSnapshots(keras.callbacks.Callback):
    """The salt probabilities of a few fixed sections at 101x101: before training, then every `every` epochs.

    images are network inputs (N, S, S, 1); masks their 101x101 truths, kept for the figure
    (helpers.training_figures.plot_prediction_snapshots). snapshots maps an epoch (0: before the first) to the
    (N, 101, 101) probabilities after it; the last epoch run is always taken, even when early stopping ends
    training between two multiples of every.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, sizing: Sizing, every: int = 1):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive number of epochs; got {every!r}")
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        self.images, self.masks, self.sizing, self.every = images, masks, sizing, every
        self.snapshots: dict[int, np.ndarray] = {}
        self._last_epoch: int | None = None

    def _take(self, epoch: int) -> None:
        probabilities = self.model.predict(self.images, batch_size=len(self.images), verbose=0)
        self.snapshots[epoch] = self.sizing.to_native(np.asarray(probabilities, dtype=np.float32)[..., 0])

    def on_train_begin(self, logs=None):
        self._last_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._last_epoch is None and epoch not in self.snapshots:
            self._take(epoch)  # the model as this fit starts (epoch 0: untrained)

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch + 1
        if self._last_epoch % self.every == 0:
            self._take(self._last_epoch)

    def on_train_end(self, logs=None):
        if self._last_epoch is not None and self._last_epoch not in self.snapshots:
            self._take(self._last_epoch)


class ResumableReduceLR(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau on val_loss that starts from a saved state on resume."""

    def __init__(self, config: TrainConfig, state: dict | None):
        super().__init__(monitor="val_loss", mode="min", factor=config.reduce_lr_factor,
                         patience=config.reduce_lr_patience, min_lr=config.min_lr, verbose=0)
        self.saved = state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.saved:
            self.wait, self.cooldown_counter = self.saved["lr_wait"], self.saved["lr_cooldown"]
            self.best = self.saved.get("lr_best", self.saved.get("best_val_loss"))


def saved_best(state: dict | None) -> float:
    """The best monitored value a saved state holds (NaN before the first epoch)."""
    # Runs saved before MONITOR existed kept their best val_loss under its own name.
    return state.get("best_value", state.get("best_val_loss")) if state else math.nan


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping on the config's monitor that starts from a saved state on resume."""

    def __init__(self, config: TrainConfig, state: dict | None):
        super().__init__(monitor=config.monitor, mode=MONITOR_MODES[config.monitor],
                         patience=config.early_stopping_patience, restore_best_weights=False, verbose=0)
        self.saved = state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.saved:
            self.wait, self.best_epoch = self.saved["stop_wait"], self.saved["best_epoch"]
            self.best = saved_best(self.saved)


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite batch loss and remembers where (epoch, batch; 1-based)."""

    def __init__(self):
        super().__init__()
        self.diverged_at: tuple[int, int] | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = (self._epoch + 1, batch + 1)
            self.model.stop_training = True


class RunCheckpoint(keras.callbacks.Callback):
    """After every epoch: the models, then the state that commits the epoch, then the history CSV."""

    def __init__(self, config: TrainConfig, run_dir: Path, state: dict | None, reduce_lr: ResumableReduceLR | None,
                 early_stop: ResumableEarlyStopping):
        super().__init__()
        self.config, self.run_dir, self.reduce_lr, self.early_stop = config, run_dir, reduce_lr, early_stop
        self.history = read_history(run_dir)
        self.best = saved_best(state)
        self.best_epoch = state["best_epoch"] if state else -1

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        self.history.append(row)
        if not math.isfinite(logs.get("loss", math.nan)):
            return  # NaNGuard stops the run; never checkpoint a diverged model
        monitor = self.config.monitor
        improved = is_improvement(float(logs.get(monitor, math.nan)), self.best, monitor)
        if improved:
            self.best, self.best_epoch = float(logs[monitor]), epoch
            save_model_atomic(self.model, pending_model(self.run_dir, BEST_MODEL_FILE, epoch + 1))
        save_model_atomic(self.model, pending_model(self.run_dir, LAST_MODEL_FILE, epoch + 1))
        committed = {
            "completed_epochs": epoch + 1,
            "history": self.history,
            "monitor": monitor,
            "best_value": self.best,
            "best_epoch": self.best_epoch,
            **({} if self.reduce_lr is None else {"lr_best": float(self.reduce_lr.best),
                                                  "lr_wait": int(self.reduce_lr.wait),
                                                  "lr_cooldown": int(self.reduce_lr.cooldown_counter)}),
            "stop_wait": int(self.early_stop.wait),
            "stopped_early": bool(self.model.stop_training),
        }
        write_json_atomic(self.run_dir / STATE_FILE, committed)
        settle_run_dir(self.run_dir, committed)
        if self.config.progress:
            print(epoch_line(row, self.config.epochs, improved), flush=True)


def epoch_line(row: dict[str, float], epochs: int, improved: bool) -> str:
    """One readable line per epoch for notebooks and papermill logs."""
    parts = [f"epoch {int(row['epoch']):3d}/{epochs}"]
    for key in ("loss", "val_loss", "val_iou", "val_score"):
        if key in row:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"lr {row.get('learning_rate', float('nan')):.1e}")
    parts.append(f"{row.get('train_seconds', 0):.0f}s")
    if improved:
        parts.append("* best")
    return "  ".join(parts)


@dataclass
class RunCallbacks:
    """A run's callbacks in the order fit must call them, and the two that train() reads afterwards."""

    all: list[Any]
    nan_guard: NaNGuard
    checkpoint: RunCheckpoint


def run_callbacks(config: TrainConfig, run_dir: Path, validation: ValidationScore, state: dict | None) -> RunCallbacks:
    """The callbacks of a run in run_dir, restored to their saved state on resume."""
    # A cosine schedule sets the rate itself, step by step; only the plateau schedule needs a callback.
    reduce_lr = ResumableReduceLR(config, state) if config.lr_schedule == "plateau" else None
    early_stop = ResumableEarlyStopping(config, state)
    nan_guard = NaNGuard()
    checkpoint = RunCheckpoint(config, run_dir, state, reduce_lr, early_stop)
    schedule = [reduce_lr] if reduce_lr is not None else []
    return RunCallbacks([validation, nan_guard, *schedule, early_stop, checkpoint], nan_guard, checkpoint)
