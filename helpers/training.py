"""Training a U-Net from a config, in a run folder that keeps everything and can be resumed."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
BEST_MODEL_FILE = "best.keras"
LAST_MODEL_FILE = "last.keras"
METRICS_FILE = "metrics.json"
SPLIT_FILE = "split.json"  # the ids a run trains and validates on, so that a changed data folder is noticed
FIGURES_DIR = "figures"
FINE_TUNED_DIR = "fine_tuned"  # a run's second stage (notebook 04): a run folder of its own inside the first's


MONITOR_MODES = {"val_score": "max", "val_loss": "min"}
"""What a run may select its best epoch by, and whether higher or lower is better."""

FINE_TUNE_LOSS = "lovasz"
FINE_TUNE_LEARNING_RATE = 1e-4
FINE_TUNE_EPOCHS = 25
"""The second stage's recipe: the loss of the challenge's top solutions, at the first stage's lowered rate."""

SPLIT_FIELDS = ("n_images", "val_fraction", "seed")
"""Config fields that, with the data folder, decide which images a run trains and validates on."""
WEIGHT_FIELDS = ("base_filters", "depth", "batch_norm", "single_conv_blocks")
"""Config fields that decide the network's weights, so a run can only start from a run that shares them."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the run folder keeps the last good epoch."""


class SplitChangedError(ValueError):
    """The data folder no longer gives the split a run recorded; the message says what changed."""


@dataclass
class TrainConfig:
    """Everything that defines a training run; the defaults are the original project's recipe (but see monitor)."""

    data_dir: str = ""  # a folder in Kaggle's layout; "" means SALT_DATA_DIR or the built-in synthetic set
    n_images: int = 0  # labelled images to use, 0 means all
    val_fraction: float = 0.1  # held out, stratified by salt coverage
    img_size: int = 112  # network input side, a multiple of 16; 112 is the smallest that holds 101 (pad)
    sizing: str = "pad"  # "pad" (reflect) or "resize" between 101 and img_size
    base_filters: int = 16
    depth: int = 4
    dropout: float = 0.05
    batch_norm: bool = True
    single_conv_blocks: bool = False  # True rebuilds the original notebook's slip
    # TensorFlow's fused batch-norm kernel for training: the same arithmetic as Keras' layer, about 1.3x
    # faster training steps on a CPU (README, Performance); False builds Keras' own BatchNormalization.
    fused_batch_norm: bool = True
    loss: str = "bce"
    learning_rate: float = 1e-3
    batch_size: int = 32  # per replica; the global batch is batch_size x replicas
    epochs: int = 50
    reduce_lr_patience: int = 5
    reduce_lr_factor: float = 0.1
    min_lr: float = 1e-5
    early_stopping_patience: int = 10
    # The epoch kept and early stopping follow the validation competition score, the number the course is
    # judged by; the original followed val_loss ("val_loss" rebuilds that). The LR schedule follows val_loss.
    monitor: str = "val_score"
    augment: bool = True
    seed: int = 0
    # A finished run folder whose best model starts this run (a fine-tuning stage, e.g. LOSS="lovasz"
    # after BCE). Its split must be this run's, or its training images would leak into validation.
    init_from: str = ""
    mixed_precision: str = "auto"  # auto: float16 on GPUs, bfloat16 on CPUs with native bf16, else float32
    jit_compile: str = "auto"  # auto: XLA on GPUs only
    distribute: str = "none"  # none, mirrored or multiworker
    scale_learning_rate: bool = True  # multiply the learning rate by the number of replicas
    progress: bool = True  # one line per epoch

    def validate(self) -> None:
        """Raise ValueError naming the first parameter that is out of range."""
        from helpers.device import SETTINGS, STRATEGIES
        from helpers.losses import get_loss

        checks = [
            (self.n_images >= 0, "N_IMAGES", "must be 0 (all) or positive"),
            (0 < self.val_fraction < 1, "VAL_FRACTION", "must lie strictly between 0 and 1"),
            (self.img_size > 0 and self.img_size % 16 == 0, "IMG_SIZE",
             f"must be a positive multiple of 16 (e.g. {max(16, self.img_size // 16 * 16)} or "
             f"{(self.img_size // 16 + 1) * 16})"),
            (self.sizing in ("pad", "resize"), "SIZING", "must be 'pad' or 'resize'"),
            (not (self.sizing == "pad" and self.img_size < 101), "IMG_SIZE",
             "must be at least 101 to pad the 101x101 sections (use 112 or 128), or use SIZING='resize'"),
            (self.batch_size > 0, "BATCH_SIZE", "must be positive"),
            (self.epochs > 0, "EPOCHS", "must be positive"),
            (self.learning_rate > 0, "LEARNING_RATE", "must be positive"),
            (self.mixed_precision in SETTINGS, "MIXED_PRECISION", f"must be one of {SETTINGS}"),
            (self.jit_compile in SETTINGS, "JIT_COMPILE", f"must be one of {SETTINGS}"),
            (self.distribute in STRATEGIES, "DISTRIBUTE", f"must be one of {STRATEGIES}"),
            (self.monitor in MONITOR_MODES, "MONITOR", f"must be one of {tuple(MONITOR_MODES)}"),
        ]
        for ok, name, rule in checks:
            if not ok:
                value = getattr(self, name.lower(), None)
                raise ValueError(f"{name} {rule}; got {value!r}")
        get_loss(self.loss)

    def to_json(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def with_absolute_paths(self) -> "TrainConfig":
        """A copy whose data_dir and init_from are absolute, so a run folder read from elsewhere finds them."""
        def absolute(value: str) -> str:
            return str(Path(value).expanduser().resolve()) if value else value

        return dataclasses.replace(self, data_dir=absolute(self.data_dir), init_from=absolute(self.init_from))

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "TrainConfig":
        """A config from a dict written by to_json; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training config keys: {unknown}")
        # Runs saved before these parameters existed kept their best epoch by val_loss, with Keras' batch norm.
        return cls(**{"monitor": "val_loss", "fused_batch_norm": False, **values})


@dataclass
class RunResult:
    """What a finished run leaves: its folder, per-epoch history and final metrics."""

    run_dir: Path
    history: list[dict[str, float]]
    metrics: dict[str, Any]
    model: Any = field(repr=False, default=None)


# ----------------------------------------------------------------------------------------------
# Run folders


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


def _write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default))
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


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


def write_history(run_dir: str | Path, history: list[dict[str, float]]) -> Path:
    """Write the per-epoch history as CSV, atomically (columns: the union of keys, epoch first)."""
    path = Path(run_dir) / HISTORY_FILE
    keys = sorted({key for row in history for key in row} - {"epoch"})
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["epoch", *keys])
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)
    return path


def split_of(data: dict[str, Any]) -> dict[str, Any]:
    """The split prepared data holds: its data folder and the ids it trains and validates on."""
    ids = data["dataset"].ids
    return {"data_dir": str(Path(data["data_dir"]).resolve()), "train_ids": [ids[i] for i in data["train_idx"]],
            "val_ids": [ids[i] for i in data["val_idx"]]}


def read_split(run_dir: str | Path) -> dict[str, Any] | None:
    """The split a run recorded when it started (None for runs saved before splits were recorded)."""
    path = Path(run_dir) / SPLIT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


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


def check_split(run_dir: str | Path, data: dict[str, Any]) -> None:
    """Refuse prepared data whose split is not the one the run in run_dir recorded, saying what changed."""
    recorded = read_split(run_dir)
    changes = split_changes(recorded, split_of(data)) if recorded else []
    if changes:
        raise SplitChangedError(
            f"the data in {data['data_dir']} no longer gives the split that the run in {run_dir} was trained on: "
            f"{'; '.join(changes)}. Its validation score would be measured partly on sections it trained on. "
            "Use the data folder as it was when the run started, or start a new run on the data as it is now"
        )


def is_improvement(value: float, best: float, monitor: str) -> bool:
    """Whether value beats best for the monitored quantity (higher score, lower loss)."""
    if not math.isfinite(value):
        return False
    if not math.isfinite(best):
        return True
    return value > best if MONITOR_MODES[monitor] == "max" else value < best


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


def final_stage(run_dir: str | Path) -> Path:
    """The run's fine-tuned second stage when it finished and scores at least as well, else the run itself."""
    first, tuned = Path(run_dir), Path(run_dir) / FINE_TUNED_DIR
    if not (tuned / METRICS_FILE).is_file():
        return first
    if not (first / METRICS_FILE).is_file():
        return tuned

    def score(folder: Path) -> float:
        return float(json.loads((folder / METRICS_FILE).read_text()).get("val_score", -math.inf))

    # Chosen on the validation set like the epochs themselves: fine-tuning never makes the kept model worse.
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


# ----------------------------------------------------------------------------------------------
# Callbacks


def _make_callbacks(config: TrainConfig, run_dir: Path, validation: tuple, sizing,
                    state: dict | None) -> tuple[list, Any, Any]:
    """The run's callbacks in order, restored to their saved state on resume; also its NaN guard and checkpoint."""
    import keras

    from helpers.metrics import competition_score

    val_images, val_masks_native, val_batch = validation
    # Runs saved before MONITOR existed kept their best val_loss under its own name.
    saved_best = state.get("best_value", state.get("best_val_loss")) if state else math.nan

    class ValidationScore(keras.callbacks.Callback):
        """Adds the competition score of the validation set at 101x101 to the epoch's logs."""

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            logs["train_seconds"] = time.perf_counter() - self._started
            started = time.perf_counter()
            probabilities = self.model.predict(val_images, batch_size=val_batch, verbose=0)
            native = sizing.to_native(np.asarray(probabilities, dtype=np.float32)[..., 0])
            logs["val_score"] = float(competition_score(val_masks_native, native > 0.5))
            logs["eval_seconds"] = time.perf_counter() - started

    class ResumableReduceLR(keras.callbacks.ReduceLROnPlateau):
        """ReduceLROnPlateau that starts from a saved state on resume."""

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if state:
                self.wait, self.cooldown_counter = state["lr_wait"], state["lr_cooldown"]
                self.best = state.get("lr_best", state.get("best_val_loss"))

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        """EarlyStopping that starts from a saved state on resume."""

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if state:
                self.wait, self.best_epoch = state["stop_wait"], state["best_epoch"]
                self.best = saved_best

    reduce_lr = ResumableReduceLR(monitor="val_loss", mode="min", factor=config.reduce_lr_factor,
                                  patience=config.reduce_lr_patience, min_lr=config.min_lr, verbose=0)
    early_stop = ResumableEarlyStopping(monitor=config.monitor, mode=MONITOR_MODES[config.monitor],
                                        patience=config.early_stopping_patience,
                                        restore_best_weights=False, verbose=0)

    class RunCheckpoint(keras.callbacks.Callback):
        """After every epoch: the models, then the state that commits the epoch, then the history CSV."""

        def __init__(self):
            super().__init__()
            self.history = read_history(run_dir)
            self.best = saved_best
            self.best_epoch = state["best_epoch"] if state else -1

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
            self.history.append(row)
            if not math.isfinite(logs.get("loss", math.nan)):
                return  # NaNGuard stops the run; never checkpoint a diverged model
            improved = is_improvement(float(logs.get(config.monitor, math.nan)), self.best, config.monitor)
            if improved:
                self.best, self.best_epoch = float(logs[config.monitor]), epoch
                _save_model_atomic(self.model, _pending_model(run_dir, BEST_MODEL_FILE, epoch + 1))
            _save_model_atomic(self.model, _pending_model(run_dir, LAST_MODEL_FILE, epoch + 1))
            committed = {
                "completed_epochs": epoch + 1,
                "history": self.history,
                "monitor": config.monitor,
                "best_value": self.best,
                "best_epoch": self.best_epoch,
                "lr_best": float(reduce_lr.best),
                "lr_wait": int(reduce_lr.wait),
                "lr_cooldown": int(reduce_lr.cooldown_counter),
                "stop_wait": int(early_stop.wait),
                "stopped_early": bool(self.model.stop_training),
            }
            _write_json_atomic(run_dir / STATE_FILE, committed)
            settle_run_dir(run_dir, committed)
            if config.progress:
                print(_epoch_line(row, config.epochs, improved), flush=True)

    class NaNGuard(keras.callbacks.Callback):
        """Stops training at the first non-finite batch loss and remembers where."""

        diverged_at: tuple[int, int] | None = None

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.diverged_at = (self._epoch + 1, batch + 1)
                self.model.stop_training = True

    # Order matters: the score joins the logs before the LR/early-stopping and checkpoint callbacks read them.
    nan_guard, checkpoint = NaNGuard(), RunCheckpoint()
    return [ValidationScore(), nan_guard, reduce_lr, early_stop, checkpoint], nan_guard, checkpoint


def _pending_model(run_dir: Path, name: str, epoch: int) -> Path:
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
        pending = _pending_model(run_dir, name, committed)
        if committed and pending.exists():
            os.replace(pending, run_dir / name)
    leftovers = [path for name in (BEST_MODEL_FILE, LAST_MODEL_FILE)
                 for path in run_dir.glob(name.replace(".keras", ".*.keras"))]
    leftovers += list(run_dir.glob("*.tmp"))  # a write that a kill cut short before its rename
    for path in leftovers:
        path.unlink(missing_ok=True)
    if state is None:
        return
    if "history" in state:
        history = state["history"]
    else:  # runs saved before the state held the history: drop what a kill left beyond the last commit
        history = list({int(row["epoch"]): row for row in read_history(run_dir) if row["epoch"] <= committed}.values())
    write_history(run_dir, history)


def _save_model_atomic(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _epoch_line(row: dict[str, float], epochs: int, improved: bool) -> str:
    """One readable line per epoch for notebooks and papermill logs."""
    parts = [f"epoch {int(row['epoch']):3d}/{epochs}"]
    for key, label in (("loss", "loss"), ("val_loss", "val_loss"), ("val_iou", "val_iou"),
                       ("val_score", "val_score")):
        if key in row:
            parts.append(f"{label} {row[key]:.4f}")
    parts.append(f"lr {row.get('learning_rate', float('nan')):.1e}")
    parts.append(f"{row.get('train_seconds', 0):.0f}s")
    if improved:
        parts.append("* best")
    return "  ".join(parts)


# ----------------------------------------------------------------------------------------------
# Data


def prepare_data(config: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Load the labelled images, split them by coverage and size them for the network."""
    from helpers.data import load_train, resolve_data_dir, salt_coverage, stratified_split
    from helpers.sizing import Sizing

    data_dir = resolve_data_dir(config.data_dir)
    dataset = load_train(data_dir, n_images=config.n_images, progress=progress)
    train_idx, val_idx = stratified_split(salt_coverage(dataset.masks), config.val_fraction, config.seed)
    sizing = Sizing(mode=config.sizing, size=config.img_size)

    def to_network(array: np.ndarray, is_mask: bool) -> np.ndarray:
        sized = sizing.to_network(array)
        if is_mask and config.sizing == "resize":
            sized = (sized > 0.5).astype(np.float32)
        return sized[..., None].astype(np.float32)

    return {
        "data_dir": data_dir,
        "dataset": dataset,
        "train_idx": train_idx,
        "val_idx": val_idx,
        "sizing": sizing,
        "x_train": to_network(dataset.images[train_idx], False),
        "y_train": to_network(dataset.masks[train_idx], True),
        "x_val": to_network(dataset.images[val_idx], False),
        "y_val": to_network(dataset.masks[val_idx], True),
        "val_masks_native": dataset.masks[val_idx],
    }


# ----------------------------------------------------------------------------------------------
# Training


def build_and_compile(config: TrainConfig, setup) -> Any:
    """A fresh U-Net compiled with Adam, the configured loss and IoU/score metrics."""
    import keras

    from helpers.losses import get_loss
    from helpers.metrics import KerasIoU
    from helpers.model import build_unet

    with setup.strategy.scope():
        model = build_unet(input_size=config.img_size, base_filters=config.base_filters, depth=config.depth,
                           dropout=config.dropout, batch_norm=config.batch_norm,
                           single_conv_blocks=config.single_conv_blocks,
                           fused_batch_norm=config.fused_batch_norm)
        learning_rate = config.learning_rate * (setup.replicas if config.scale_learning_rate else 1)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=get_loss(config.loss),
                      metrics=[KerasIoU()], jit_compile=setup.jit_compile)
    return model


def fine_tune_config(config: TrainConfig, init_from: str | Path, epochs: int, loss: str = FINE_TUNE_LOSS,
                     learning_rate: float = FINE_TUNE_LEARNING_RATE) -> TrainConfig:
    """A second stage's config: the same data, split and network, starting from init_from's best model."""
    return dataclasses.replace(config, init_from=str(init_from), epochs=epochs, loss=loss, learning_rate=learning_rate)


def check_init_source(config: TrainConfig, run_dir: str | Path | None) -> Path:
    """The best model of the INIT_FROM run folder, after checking it shares this run's split and network."""
    from helpers.data import resolve_data_dir

    source = Path(config.init_from).expanduser()
    if run_dir and source.resolve() == Path(run_dir).resolve():
        raise ValueError(f"INIT_FROM {source} is this run's own folder; give the folder of an earlier run")
    if not (source / CONFIG_FILE).is_file() or not (source / BEST_MODEL_FILE).is_file():
        raise FileNotFoundError(f"INIT_FROM {source} is not a run folder with {CONFIG_FILE} and {BEST_MODEL_FILE}; "
                                "give the folder of a finished training run")
    previous = TrainConfig.from_json(json.loads((source / CONFIG_FILE).read_text()))
    split_differs = [name for name in SPLIT_FIELDS if getattr(previous, name) != getattr(config, name)]
    if resolve_data_dir(previous.data_dir).resolve() != resolve_data_dir(config.data_dir).resolve():
        split_differs.insert(0, "data_dir")
    if split_differs:
        raise ValueError(f"INIT_FROM {source} was trained on another split ({', '.join(split_differs)} differ): "
                         "its training images could be in this run's validation set; use the same "
                         + ", ".join(("data_dir",) + SPLIT_FIELDS))
    network_differs = [name for name in WEIGHT_FIELDS if getattr(previous, name) != getattr(config, name)]
    if network_differs:
        raise ValueError(f"INIT_FROM {source} has another network ({', '.join(network_differs)} differ); "
                         "use the same " + ", ".join(WEIGHT_FIELDS))
    return source / BEST_MODEL_FILE


def start_from_run(model: Any, source: Path, config: TrainConfig) -> None:
    """Copy a run's best weights into a freshly compiled model (its optimizer starts anew)."""
    model.set_weights(load_model(source).get_weights())
    if config.progress:
        print(f"Weights from {source} (loss {config.loss}, learning rate {config.learning_rate:g})", flush=True)


def _load_for_resume(run_dir: Path, setup) -> Any:
    """The last completed epoch's model, optimizer state included."""
    with setup.strategy.scope():
        return load_model(run_dir / LAST_MODEL_FILE)


def config_differences(config: TrainConfig, run_dir: Path) -> list[str]:
    """The fields (but epochs and progress) in which config differs from the one saved in run_dir."""
    previous = TrainConfig.from_json(json.loads((run_dir / CONFIG_FILE).read_text())).with_absolute_paths()
    return sorted(k for k, v in dataclasses.asdict(config.with_absolute_paths()).items()
                  if getattr(previous, k) != v and k not in ("epochs", "progress"))


def prepare_run_dir(config: TrainConfig, run_dir: str | Path | None, run_root: str | Path) -> tuple[Path, dict | None]:
    """A new run folder, or the given one: empty (fresh), unfinished (resume) or finished (refused)."""
    path = check_run_dir(config, run_dir)
    if path is None:
        return _writable(lambda: new_run_dir(run_root), "RUN_ROOT", Path(run_root)), None
    _writable(lambda: path.mkdir(parents=True, exist_ok=True), "RUN_DIR", path)
    state = read_run_state(path)
    _writable(lambda: settle_run_dir(path, state), "RUN_DIR", path)
    return path, state


def check_run_dir(config: TrainConfig, run_dir: str | Path | None) -> Path | None:
    """The run folder training will use (None: a new one under RUN_ROOT); raises, writing nothing, if it cannot.

    A folder whose first attempt stopped before an epoch completed (bad data, say) holds nothing to keep, so it
    starts again with the new config; one with a completed epoch resumes only with the same config.
    """
    if run_dir is None or str(run_dir) == "":
        return None
    path = Path(run_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"RUN_DIR {path} is a file; choose a folder")
    if not path.exists():
        return path
    if (path / METRICS_FILE).exists():
        raise FileExistsError(
            f"RUN_DIR {path} holds a finished run; choose a new RUN_DIR (runs are never overwritten)"
        )
    if (path / CONFIG_FILE).exists():
        differences = config_differences(config, path)
        if differences and (path / STATE_FILE).exists():
            raise ValueError(
                f"RUN_DIR {path} holds an interrupted run with a different config ({differences}); "
                "resume it with the same parameters or choose a new RUN_DIR"
            )
        return path
    if any(path.iterdir()):
        raise FileExistsError(f"RUN_DIR {path} is not empty and is not a run folder; choose a new RUN_DIR")
    return path


def _writable(action, name: str, path: Path):
    """Run a write into a run folder, turning the OS's error into one that names the parameter and the fix."""
    try:
        return action()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise PermissionError(f"{name} {path} cannot be written ({reason}); "
                              f"choose a {name} in a folder you can write to") from error


def replica_batch_size(n_images: int, global_batch: int, replicas: int, name: str) -> int:
    """The largest batch size up to global_batch with which no replica ever gets an empty or uneven first share."""
    # Under a tf.distribute strategy Keras builds the model from the replica-mean of the first batch
    # (shapes must agree), and oneDNN kernels fail on a replica's empty share of a small last batch.
    if replicas == 1:
        return global_batch
    for batch in range(min(global_batch, n_images) // replicas * replicas, 0, -replicas):
        if n_images % batch == 0 or n_images % batch >= replicas:
            return batch
    raise ValueError(f"the {name} set has {n_images} image(s), which {replicas} replicas cannot share in batches "
                     "that give each of them at least one image; change N_IMAGES or use fewer devices")


def train(config: TrainConfig, run_dir: str | Path | None = None, run_root: str | Path = "runs",
          data: dict[str, Any] | None = None) -> RunResult:
    """Train (or resume) a run: the model, history, metrics and figures land in its run folder."""
    import keras

    from helpers.device import setup_device
    from helpers.pipeline import make_dataset

    config.validate()
    config = config.with_absolute_paths()  # the run folder is read later from other folders (notebooks/)
    # Everything that can refuse the run is checked, and the data loaded, before the run folder is written:
    # a mistake leaves nothing behind, and the corrected retry starts cleanly in the same RUN_DIR.
    check_run_dir(config, run_dir)
    resuming = bool(run_dir) and (Path(run_dir) / STATE_FILE).exists()
    init_source = check_init_source(config, run_dir) if config.init_from and not resuming else None
    data = data if data is not None else prepare_data(config, progress=config.progress)
    if init_source is not None:
        check_split(init_source.parent, data)
    if resuming:
        check_split(run_dir, data)
    run_dir, state = prepare_run_dir(config, run_dir, run_root)
    if not state:
        _write_json_atomic(run_dir / SPLIT_FILE, split_of(data))
    _write_json_atomic(run_dir / CONFIG_FILE, config.to_json())
    keras.utils.set_random_seed(config.seed)
    setup = setup_device(config.mixed_precision, config.jit_compile, config.distribute)
    if config.progress:
        action = f"resuming after epoch {state['completed_epochs']}" if state else "new run"
        print(f"Run folder: {run_dir} ({action})\nDevice: {setup.summary()}", flush=True)

    global_batch = config.batch_size * setup.replicas
    train_batch = replica_batch_size(len(data["x_train"]), global_batch, setup.replicas, "training")
    val_batch = replica_batch_size(len(data["x_val"]), global_batch, setup.replicas, "validation")
    train_ds = make_dataset(data["x_train"], data["y_train"], train_batch, training=True, seed=config.seed,
                            augment=config.augment)
    val_ds = make_dataset(data["x_val"], data["y_val"], val_batch, training=False)
    if state:
        model = _load_for_resume(run_dir, setup)
    else:
        model = build_and_compile(config, setup)
        if init_source is not None:
            start_from_run(model, init_source, config)
    initial_epoch = state["completed_epochs"] if state else 0
    callbacks, nan_guard, checkpoint = _make_callbacks(
        config, run_dir, (data["x_val"], data["val_masks_native"], val_batch), data["sizing"], state)
    started = time.perf_counter()
    if not (state and state.get("stopped_early")) and initial_epoch < config.epochs:
        model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, initial_epoch=initial_epoch,
                  callbacks=callbacks, verbose=0, shuffle=False)  # the tf.data pipeline shuffles
    if nan_guard.diverged_at is not None:
        epoch, batch = nan_guard.diverged_at
        write_history(run_dir, checkpoint.history)
        raise TrainingDivergedError(
            f"the training loss became NaN at epoch {epoch}, batch {batch}; training stopped. "
            f"{run_dir} keeps the config, the history and the models of the last good epoch. "
            "Lower LEARNING_RATE (or turn MIXED_PRECISION off) and start a new run."
        )
    metrics = finish_run(run_dir, config, data, setup, time.perf_counter() - started)
    return RunResult(run_dir=run_dir, history=read_history(run_dir), metrics=metrics,
                     model=load_model(run_dir / BEST_MODEL_FILE))


def load_model(path: str | Path) -> Any:
    """Load a model saved by a run (custom losses and metrics included)."""
    import keras

    import helpers.losses  # noqa: F401  (registers the custom losses for deserialisation)
    import helpers.metrics  # noqa: F401  (registers the custom metrics)
    import helpers.model  # noqa: F401  (registers FusedBatchNormalization)

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}: train a run first (notebook 04) or fix RUN_DIR")
    return keras.models.load_model(path)


def finish_run(run_dir: Path, config: TrainConfig, data: dict[str, Any], setup, seconds: float) -> dict[str, Any]:
    """Evaluate the best model on the validation set and write metrics.json and the figures."""
    from helpers.metrics import best_threshold, competition_score
    from helpers.plotting import plot_learning_curves, save_figure
    from helpers.predict import predict_probabilities

    model = load_model(run_dir / BEST_MODEL_FILE)
    val_images = data["dataset"].images[data["val_idx"]]
    truth = data["val_masks_native"]
    plain = predict_probabilities(model, val_images, data["sizing"], batch_size=config.batch_size, tta=False)
    flipped = predict_probabilities(model, val_images, data["sizing"], batch_size=config.batch_size, tta=True)
    threshold, _ = best_threshold(truth, flipped)
    history = read_history(run_dir)
    state = read_run_state(run_dir) or {}
    best_epoch = best_epoch_of(history, config.monitor)
    best_row = next(row for row in history if int(row["epoch"]) == best_epoch)
    metrics = {
        "monitor": config.monitor,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "stopped_early": bool(state.get("stopped_early", False)),
        "best_epoch_val_loss": float(best_row["val_loss"]),
        "best_epoch_val_score": float(best_row.get("val_score", math.nan)),
        "val_score": float(competition_score(truth, plain > 0.5)),
        "val_score_tta": float(competition_score(truth, flipped > 0.5)),
        "threshold": float(threshold),
        "val_score_tta_threshold": float(competition_score(truth, flipped > threshold)),
        "train_seconds": float(sum(row.get("train_seconds", 0.0) for row in history)),
        "wall_seconds_this_session": float(seconds),
        "n_train": int(len(data["train_idx"])),
        "n_val": int(len(data["val_idx"])),
        "parameters": int(model.count_params()),
        "device": setup.summary(),
        "data_dir": str(data["data_dir"]),
    }
    figure = plot_learning_curves(history, best_epoch=best_epoch)
    save_figure(figure, "learning_curves", run_dir / FIGURES_DIR)
    _write_json_atomic(run_dir / METRICS_FILE, metrics)
    if config.progress:
        print(f"Best epoch {metrics['best_epoch']}: validation score {metrics['val_score']:.4f} "
              f"(flip TTA {metrics['val_score_tta']:.4f}, threshold {threshold:.2f}: "
              f"{metrics['val_score_tta_threshold']:.4f})", flush=True)
    return metrics


def resume(run_dir: str | Path) -> RunResult:
    """Continue an interrupted run from its last completed epoch, with its saved config."""
    path = Path(run_dir)
    saved = path / CONFIG_FILE
    if not saved.exists():
        raise FileNotFoundError(f"{path} is not a run folder (no {CONFIG_FILE})")
    return train(TrainConfig.from_json(json.loads(saved.read_text())), run_dir=path)


TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_bool(text: str) -> bool:
    """A command-line boolean: true/yes/on/1 or false/no/off/0 (any case); anything else is refused."""
    word = text.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    import argparse

    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean: use one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, str | None, str, dict[str, Any]]:
    """The command line: a TrainConfig (every field a --flag), the run folder, the run root and the second stage."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m helpers.training", description=main.__doc__)
    parser.add_argument("--run-dir", default=None, help="run folder (new, or an interrupted run to resume)")
    parser.add_argument("--run-root", default="runs", help="where new run folders are created")
    parser.add_argument("--finetune-epochs", type=int, default=FINE_TUNE_EPOCHS,
                        help=f"most epochs of the second stage, in RUN_DIR/{FINE_TUNED_DIR} "
                             f"(default {FINE_TUNE_EPOCHS}; 0 skips it)")
    parser.add_argument("--finetune-loss", default=FINE_TUNE_LOSS, help="the second stage's loss")
    parser.add_argument("--finetune-learning-rate", type=float, default=FINE_TUNE_LEARNING_RATE,
                        help="the second stage's initial learning rate")
    for item in dataclasses.fields(TrainConfig):
        flag = "--" + item.name.replace("_", "-")
        if item.type in ("bool", bool):
            parser.add_argument(flag, type=parse_bool, default=item.default, metavar="{true,false}")
        else:
            kind = {"int": int, "float": float}.get(str(item.type), str)
            parser.add_argument(flag, type=kind, default=item.default)
    args = vars(parser.parse_args(argv))
    run_dir, run_root = args.pop("run_dir"), args.pop("run_root")
    stage_two = {"epochs": args.pop("finetune_epochs"), "loss": args.pop("finetune_loss"),
                 "learning_rate": args.pop("finetune_learning_rate")}
    if stage_two["epochs"] < 0:
        parser.error(f"--finetune-epochs must be 0 (no second stage) or positive; got {stage_two['epochs']}")
    return TrainConfig(**args), run_dir, run_root, stage_two


USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError,
               TrainingDivergedError)
"""What a mistake in the command line, the data or the run folder raises: the CLI prints it without a traceback."""


def cli(argv: list[str] | None = None) -> int:
    """`python -m helpers.training`: main, with a user's mistake reported as one `error:` line and exit code 2."""
    import sys

    try:
        main(argv)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> RunResult:
    """Train a run (or resume it), then fine-tune its best model in a second stage, as notebook 04 does."""
    config, run_dir, run_root, stage_two = parse_args(argv)
    first_done = bool(run_dir) and (Path(run_dir) / METRICS_FILE).exists()
    if first_done and stage_two["epochs"] > 0:
        # The first stage finished in an earlier call: go on with (or resume) the second.
        different = config_differences(config, Path(run_dir))
        if different:
            raise ValueError(f"RUN_DIR {run_dir} finished its first stage with a different config "
                             f"({', '.join(different)}); give the same parameters or a new RUN_DIR")
        first_dir = Path(run_dir)
        if config.progress:
            print(f"{first_dir} finished its first stage; on to the second", flush=True)
    else:
        first_dir = train(config, run_dir=run_dir, run_root=run_root).run_dir
    if stage_two["epochs"] == 0:
        return RunResult(run_dir=first_dir, history=read_history(first_dir),
                         metrics=json.loads((first_dir / METRICS_FILE).read_text()))
    return train(fine_tune_config(config, first_dir, **stage_two), run_dir=first_dir / FINE_TUNED_DIR)


if __name__ == "__main__":
    raise SystemExit(cli())
