"""Training a U-Net from a config, in a run folder that keeps everything and can be resumed.

    python -m helpers.training --data-dir DIR --run-dir runs/first     # both stages, as notebook 04 runs them

train() is the whole procedure: check the run folder, load and split the data, build the model (or reload it to
resume), fit it through helpers.fitting with the run's callbacks (helpers.callbacks), then evaluate its best
epoch into metrics.json. The run folder's format is helpers.run_folder's.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.config import (
    FINE_TUNE_EPOCHS,
    FINE_TUNE_LEARNING_RATE,
    FINE_TUNE_LOSS,
    SCORE_THRESHOLD,
    SPLIT_FIELDS,
    WEIGHT_FIELDS,
    TrainConfig,
    fine_tune_config,
    flag_of,
)
from helpers.prepared_data import PreparedData, prepare_data
from helpers.run_folder import (
    BEST_MODEL_FILE,
    CONFIG_FILE,
    FINE_TUNED_DIR,
    LAST_MODEL_FILE,
    METRICS_FILE,
    SPLIT_FILE,
    STATE_FILE,
    best_epoch_of,
    check_run_dir,
    check_split,
    config_differences,
    load_model,
    load_run,
    prepare_run_dir,
    read_config,
    read_history,
    read_run_state,
    write_history,
    write_json_atomic,
)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the run folder keeps the last good epoch."""


@dataclass
class RunResult:
    """What a finished run leaves: its folder, per-epoch history and final metrics."""

    run_dir: Path
    history: list[dict[str, float]]
    metrics: dict[str, Any]
    model: Any = field(repr=False, default=None)


def train(config: TrainConfig, run_dir: str | Path | None = None, run_root: str | Path = "runs",
          data: PreparedData | None = None, callbacks: Sequence[Any] = ()) -> RunResult:
    """Train (or resume) a run: the model, history, metrics and figures land in its run folder.

    callbacks: more Keras callbacks to watch the run (notebook 04's PredictionSnapshots); they run after the
    run's own, so they see each epoch's validation score, and nothing of theirs is saved in the run folder.
    """
    import keras

    from helpers.callbacks import ValidationScore, run_callbacks
    from helpers.device import setup_device
    from helpers.fitting import batch_sizes, build_and_compile, fit, steps_per_epoch

    config.validate()
    config = config.with_absolute_paths()  # the run folder is read later from other folders (notebooks/)
    # Everything that can refuse the run is checked, and the data loaded, before the run folder is written:
    # a mistake leaves nothing behind, and the corrected retry starts cleanly in the same RUN_DIR.
    check_run_dir(config, run_dir)
    resuming = bool(run_dir) and (Path(run_dir) / STATE_FILE).exists()
    init_source = check_init_source(config, run_dir) if config.init_from and not resuming else None
    data = data if data is not None else prepare_data(config, progress=config.progress)
    if init_source is not None:
        check_split(init_source.parent, data.split())
    if resuming:
        check_split(run_dir, data.split())
    run_dir, state = prepare_run_dir(config, run_dir, run_root)
    if not state:
        write_json_atomic(run_dir / SPLIT_FILE, data.split())
    write_json_atomic(run_dir / CONFIG_FILE, config.to_json())
    keras.utils.set_random_seed(config.seed)
    setup = setup_device(config.mixed_precision, config.jit_compile, config.distribute)
    if config.progress:
        action = f"resuming after epoch {state['completed_epochs']}" if state else "new run"
        print(f"Run folder: {run_dir} ({action})\nDevice: {setup.summary()}", flush=True)

    if state:
        with setup.strategy.scope():  # the last completed epoch's model, optimizer state included
            model = load_model(run_dir / LAST_MODEL_FILE)
    else:
        model = build_and_compile(config, setup, steps_per_epoch(config, data, setup))
        if init_source is not None:
            start_from_run(model, init_source, config)
    initial_epoch = state["completed_epochs"] if state else 0
    _, val_batch = batch_sizes(config, data, setup)
    own = run_callbacks(config, run_dir, ValidationScore(data.x_val, data.val_masks_native, data.sizing, val_batch),
                        state)
    started = time.perf_counter()
    if not (state and state.get("stopped_early")) and initial_epoch < config.epochs:
        fit(model, config, data, setup, [*own.all, *callbacks], initial_epoch=initial_epoch)
    if own.nan_guard.diverged_at is not None:
        epoch, batch = own.nan_guard.diverged_at
        write_history(run_dir, own.checkpoint.history)
        raise TrainingDivergedError(
            f"the training loss became NaN at epoch {epoch}, batch {batch}; training stopped. "
            f"{run_dir} keeps the config, the history and the models of the last good epoch. "
            "Lower LEARNING_RATE (or turn MIXED_PRECISION off) and start a new run."
        )
    metrics = finish_run(run_dir, config, data, setup, time.perf_counter() - started)
    return RunResult(run_dir=run_dir, history=read_history(run_dir), metrics=metrics,
                     model=load_model(run_dir / BEST_MODEL_FILE))


def finish_run(run_dir: Path, config: TrainConfig, data: PreparedData, setup, seconds: float) -> dict[str, Any]:
    """Evaluate the best model on the validation set and write metrics.json and the learning curves."""
    from helpers.metrics import best_threshold, competition_score, competition_score_per_image
    from helpers.plotting import plot_learning_curves, save_figure
    from helpers.predict import predict_probabilities

    model = load_model(run_dir / BEST_MODEL_FILE)
    truth = data.val_masks_native
    plain = predict_probabilities(model, data.val_images_native, data.sizing, batch_size=config.batch_size, tta=False)
    flipped = predict_probabilities(model, data.val_images_native, data.sizing, batch_size=config.batch_size, tta=True)
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
        "val_score": float(competition_score(truth, plain > SCORE_THRESHOLD)),
        "val_score_tta": float(competition_score(truth, flipped > 0.5)),
        "threshold": float(threshold),
        "val_score_tta_threshold": float(competition_score(truth, flipped > threshold)),
        "train_seconds": float(sum(row.get("train_seconds", 0.0) for row in history)),
        "wall_seconds_this_session": float(seconds),
        "n_train": int(len(data.train_idx)),
        "n_val": int(len(data.val_idx)),
        "parameters": int(model.count_params()),
        "device": setup.summary(),
        "data_dir": str(data.data_dir),
        # Each validation section's score, in split.json's order: what a paired comparison of runs needs.
        "val_section_scores": [float(score) for score in competition_score_per_image(truth, plain > SCORE_THRESHOLD)],
    }
    figure = plot_learning_curves(history, best_epoch=best_epoch)
    save_figure(figure, "learning_curves", load_run(run_dir).figures_dir)
    write_json_atomic(run_dir / METRICS_FILE, metrics)
    if config.progress:
        print(f"Best epoch {metrics['best_epoch']}: validation score {metrics['val_score']:.4f} "
              f"(flip TTA {metrics['val_score_tta']:.4f}, threshold {threshold:.2f}: "
              f"{metrics['val_score_tta_threshold']:.4f})", flush=True)
    return metrics


def resume(run_dir: str | Path) -> RunResult:
    """Continue an interrupted run from its last completed epoch, with its saved config."""
    path = Path(run_dir)
    if not (path / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{path} is not a run folder (no {CONFIG_FILE})")
    return train(read_config(path), run_dir=path)


def check_init_source(config: TrainConfig, run_dir: str | Path | None) -> Path:
    """The best model of the INIT_FROM run folder, after checking it shares this run's split and network."""
    from helpers.data import resolve_data_dir

    source = Path(config.init_from).expanduser()
    if run_dir and source.resolve() == Path(run_dir).resolve():
        raise ValueError(f"INIT_FROM {source} is this run's own folder; give the folder of an earlier run")
    if not (source / CONFIG_FILE).is_file() or not (source / BEST_MODEL_FILE).is_file():
        raise FileNotFoundError(f"INIT_FROM {source} is not a run folder with {CONFIG_FILE} and {BEST_MODEL_FILE}; "
                                "give the folder of a finished training run")
    previous = read_config(source)
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
        flag = flag_of(item.name)
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

    from helpers.tensorflow_env import apply_course_environment

    apply_course_environment()  # before TensorFlow loads (train imports it)
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
        run = load_run(first_dir)
        return RunResult(run_dir=first_dir, history=run.history, metrics=run.metrics)
    return train(fine_tune_config(config, first_dir, **stage_two), run_dir=first_dir / FINE_TUNED_DIR)


if __name__ == "__main__":
    raise SystemExit(cli())
