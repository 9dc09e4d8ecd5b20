"""Benchmark: the original notebook's training pipeline against the course's, on this machine and the real data.

Each contender trains in its own subprocess (so its peak memory and TensorFlow settings are its own) on
the same seeded 90/10 split of the real TGS files, stratified by salt coverage. For each it measures
training and inference images per second, peak resident memory, the seconds of training until the
validation competition score first reaches 0.60 ... 0.80 (and the original's best score of this run),
and the fraction of this machine's dense float32 matmul rate that its training achieves.

    python -m benchmarks.train_bench --quick   # CI-sized: 128 images, 3 epochs (minutes)
    python -m benchmarks.train_bench           # all 3200 images, up to 50 epochs: hours on a small CPU

The table goes to stdout, the numbers to build/bench/bench-<UTC time>.json and build/bench/latest.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from helpers.config import FINE_TUNE_EPOCHS, FINE_TUNE_LOSS, REAL_DATA_RECIPE, SCORE_THRESHOLD, flags_of
from helpers.coverage import stratified_split
from helpers.cpu import CPUINFO, cpu_model
from helpers.data import DATA_DIR_ENV, read_image, read_mask
from helpers.errors import DataError
from helpers.files import replaced_atomically
from helpers.tensorflow_env import course_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "tgs-salt"
DEFAULT_OUT_DIR = REPO_ROOT / "build" / "bench"
LATEST_FILE = "latest.json"

PIPELINES = ("original", "course")  # the original runs first: its best score is a target for the course
SCORE_TARGETS = ("0.60", "0.65", "0.70", "0.75", "0.80")
ORIGINAL_BEST = "original_best"
SPLIT_SEED = 0
VAL_FRACTION = 0.1

QUICK_N_IMAGES, QUICK_EPOCHS = 128, 3  # two timed epochs after the warm-up one
QUICK_FINETUNE_EPOCHS = 1  # the course's second stage, kept working in CI
FULL_N_IMAGES, FULL_EPOCHS = 0, 50  # 0 images means all of them; the original's most epochs (early stopping)
DEFAULT_PATIENCE = 10  # epochs without improvement before stopping (of val_loss, or the course's monitor)

# Training FLOPs per image = 3 x the forward convolution FLOPs: the forward product, plus the two
# backward products of the same size (gradient with respect to the input and to the kernel).
TRAIN_FLOPS_FACTOR = 3
TRAIN_FLOPS_CONVENTION = (
    "3 x helpers.model.conv_flops_per_image (forward conv/transposed-conv FLOPs = 2 x multiply-adds; "
    "backward = 2 products of the same size; batch norm, activations, pooling and biases not counted)"
)
INFERENCE_REPEATS = 3
MATMUL_REPEATS = 9
MATMUL_WARM_UP_S = 2.0  # seconds of products before timing
CPU_MATMUL_SIZES = (2048,)
GPU_MATMUL_SIZES = (2048, 4096, 8192)  # a GPU needs larger products than 2048 to reach its rate

# The original notebook's recipe (Keras "TGS salt" tutorial): 128x128 skimage-resized arrays, batch 32,
# Adam(1e-3), binary cross-entropy; ReduceLROnPlateau(0.1, 5, min 1e-5) and EarlyStopping on val_loss.
ORIGINAL_SIZE = 128
ORIGINAL_BATCH_SIZE = 32
ORIGINAL_LEARNING_RATE = 1e-3
ORIGINAL_REDUCE_LR = {"factor": 0.1, "patience": 5, "min_lr": 1e-5}


# ----------------------------------------------------------------------------------------------
# Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: --quick, --epochs, --n-images, --finetune-epochs, --data-dir, --only, --patience, --out."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.train_bench",
        description="Benchmark the original U-Net training pipeline against the course's on the real TGS data.",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"CI-sized run: {QUICK_N_IMAGES} images, {QUICK_EPOCHS} epochs (unless given)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"most epochs per pipeline (default: the original {FULL_EPOCHS} with early stopping, "
                             f"the course its real-data recipe's {REAL_DATA_RECIPE['epochs']}; "
                             f"quick {QUICK_EPOCHS} each)")
    parser.add_argument("--finetune-epochs", type=int, default=None,
                        help="most epochs of the course's second stage (Lovasz fine-tuning; default "
                             f"{FINE_TUNE_EPOCHS} as in notebook 04, quick {QUICK_FINETUNE_EPOCHS}, 0 skips it)")
    parser.add_argument("--n-images", type=int, default=None,
                        help=f"labelled images to use, 0 = all (default all, quick {QUICK_N_IMAGES})")
    parser.add_argument("--data-dir", default=None,
                        help=f"real TGS folder in Kaggle's layout (default ${DATA_DIR_ENV}, else {DEFAULT_DATA_DIR})")
    parser.add_argument("--only", choices=PIPELINES, default=None, help="run one pipeline only")
    parser.add_argument("--patience", type=int, default=DEFAULT_PATIENCE,
                        help=f"early stopping: epochs without a lower val_loss (default {DEFAULT_PATIENCE})")
    parser.add_argument("--out", default=str(DEFAULT_OUT_DIR), help=f"folder for the JSON (default {DEFAULT_OUT_DIR})")
    # Internal: how the parent starts one contender in a subprocess.
    parser.add_argument("--child", choices=PIPELINES, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure-matmul", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("epochs", "n_images", "patience", "finetune_epochs"):
        value = getattr(args, name)
        smallest = 0 if name in ("n_images", "finetune_epochs") else 1
        if value is not None and value < smallest:
            parser.error(f"--{name.replace('_', '-')} must be at least {smallest}, got {value}")
    return args


def default_data_dir() -> Path:
    """$SALT_DATA_DIR when set, else ../shared/data/tgs-salt beside the repository."""
    from_env = os.environ.get(DATA_DIR_ENV, "")
    return Path(from_env).expanduser() if from_env else DEFAULT_DATA_DIR


def check_data_dir(path: str | Path) -> Path:
    """The folder itself when it holds train/images and train/masks, else a DataError saying where to look."""
    path = Path(path)
    if not ((path / "train" / "images").is_dir() and (path / "train" / "masks").is_dir()):
        raise DataError(
            f"real TGS data not found: {path} has no train/images and train/masks folders; "
            f"pass --data-dir or set {DATA_DIR_ENV} to a folder in Kaggle's layout"
        )
    return path


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings: quick or full defaults, overridden by explicit options; checks the data folder."""
    data_dir = check_data_dir(args.data_dir if args.data_dir else default_data_dir())
    return {
        "quick": bool(args.quick),
        "epochs": args.epochs if args.epochs is not None else (QUICK_EPOCHS if args.quick else FULL_EPOCHS),
        "course_epochs": args.epochs if args.epochs is not None else (
            QUICK_EPOCHS if args.quick else REAL_DATA_RECIPE["epochs"]),
        "n_images": args.n_images if args.n_images is not None else (QUICK_N_IMAGES if args.quick else FULL_N_IMAGES),
        "finetune_epochs": args.finetune_epochs if args.finetune_epochs is not None else (
            QUICK_FINETUNE_EPOCHS if args.quick else FINE_TUNE_EPOCHS),
        "patience": args.patience,
        "data_dir": str(data_dir.resolve()),
        "seed": SPLIT_SEED,
        "val_fraction": VAL_FRACTION,
        "pipelines": [args.only] if args.only else list(PIPELINES),
    }


def cpu_info(cpuinfo: Path = CPUINFO) -> dict[str, Any]:
    """The CPU's model name (from /proc/cpuinfo, "unknown" without it) and os.cpu_count()."""
    return {"model": cpu_model(cpuinfo), "cores": os.cpu_count() or 1}


# ----------------------------------------------------------------------------------------------
# Results


def seconds_to_score(history: list[dict[str, float]], target: float) -> float | None:
    """Training seconds summed up to the first epoch whose validation score reaches target (None: never)."""
    elapsed = 0.0
    for row in history:
        elapsed += row["train_seconds"]
        if row["score"] >= target:
            return elapsed
    return None


def median_train_rate(history: list[dict[str, float]], n_train: int) -> float:
    """Median training images per second over the first stage's epochs after the first (the warm-up)."""
    # A second stage trains the same network with another loss; its epochs are left out of the rate.
    rates = [n_train / row["train_seconds"] for row in history if row.get("stage", 1) == 1]
    if not rates:
        raise ValueError("median_train_rate needs at least one epoch of history")
    return float(statistics.median(rates[1:] or rates))


def matmul_fraction(images_per_s: float, train_flops_per_image: float, matmul_gflops: float) -> float:
    """The share of the dense matmul rate that training at images_per_s achieves."""
    return images_per_s * train_flops_per_image / (matmul_gflops * 1e9)


def pipeline_summary(result: dict[str, Any], matmul_gflops: float, original_best: float | None) -> dict[str, Any]:
    """The six reported numbers of one contender, from what its subprocess measured."""
    history = result["history"]
    targets = {target: seconds_to_score(history, float(target)) for target in SCORE_TARGETS}
    targets[ORIGINAL_BEST] = None if original_best is None else seconds_to_score(history, original_best)
    return {
        "train_images_per_s": result["train_images_per_s"],
        "infer_images_per_s": result["infer_images_per_s"],
        "peak_rss_mib": result["peak_rss_mib"],
        "seconds_to_score": targets,
        "best_score": max(row["score"] for row in history),
        "matmul_fraction": matmul_fraction(result["train_images_per_s"], result["train_flops_per_image"],
                                           matmul_gflops),
    }


def build_report(results: dict[str, dict[str, Any]], settings: dict[str, Any], started_at: str,
                 finished_at: str) -> dict[str, Any]:
    """The JSON report: one summary per pipeline, the machine, the settings used and the timestamps."""
    digests = {result["val_digest"] for result in results.values()}
    if len(digests) > 1:
        raise RuntimeError("the pipelines validated on different images; the split must be the same for all")
    measured = next(result for result in results.values() if "matmul_gflops" in result)
    matmul_gflops = measured["matmul_gflops"]
    original_best = max(row["score"] for row in results["original"]["history"]) if "original" in results else None
    first = next(iter(results.values()))
    used = {key: settings[key] for key in ("quick", "epochs", "course_epochs", "finetune_epochs", "patience",
                                           "data_dir", "seed", "val_fraction")}
    used.update({
        "n_images": first["n_train"] + first["n_val"],
        "n_images_requested": settings["n_images"],
        "n_train": first["n_train"],
        "n_val": first["n_val"],
        "score_threshold": SCORE_THRESHOLD,
        "train_flops_convention": TRAIN_FLOPS_CONVENTION,
        "pipelines": {name: {
            "setup": result["setup"],
            "parameters": result["parameters"],
            "train_gflops_per_image": result["train_flops_per_image"] / 1e9,
            "epochs_run": len(result["history"]),
        } for name, result in results.items()},
    })
    return {
        "pipelines": {name: pipeline_summary(result, matmul_gflops, original_best) for name, result in results.items()},
        "matmul_gflops": matmul_gflops,
        "cpu": cpu_info(),
        "device": measured["device"],
        "settings": used,
        "started_at": started_at,
        "finished_at": finished_at,
    }


def format_table(report: dict[str, Any]) -> str:
    """The report as a readable text table (seconds to each score; '-' where it was never reached)."""
    settings, cpu = report["settings"], report["cpu"]
    lines = [
        f"Machine: {cpu['model']} ({cpu['cores']} cores) | device: {report['device']} | "
        f"dense float32 matmul {report['matmul_gflops']:.1f} GFLOP/s",
        f"Data: {settings['n_images']} images ({settings['n_train']} train / {settings['n_val']} val), "
        f"original: up to {settings['epochs']} epochs; course: {settings['course_epochs']}, "
        f"then up to {settings['finetune_epochs']} of fine-tuning; "
        f"patience {settings['patience']}"
        + (" [quick]" if settings["quick"] else ""),
    ]
    for name, details in settings["pipelines"].items():
        lines.append(f"  {name}: {details['setup']}; {details['parameters']:,} parameters, "
                     f"{details['epochs_run']} epochs run")
    targets = (*SCORE_TARGETS, ORIGINAL_BEST)
    header = (f"{'pipeline':<10}{'train img/s':>12}{'infer img/s':>12}{'peak MiB':>10}{'matmul %':>10}"
              f"{'best':>8}" + "".join(f"{('s@' + t) if t != ORIGINAL_BEST else 's@orig':>9}" for t in targets))
    lines += ["", header, "-" * len(header)]
    for name, row in report["pipelines"].items():
        seconds = "".join(f"{_seconds_text(row['seconds_to_score'][t]):>9}" for t in targets)
        lines.append(f"{name:<10}{row['train_images_per_s']:>12.1f}{row['infer_images_per_s']:>12.1f}"
                     f"{row['peak_rss_mib']:>10.0f}{100 * row['matmul_fraction']:>9.1f}%"
                     f"{row['best_score']:>8.4f}{seconds}")
    lines.append("s@X: training seconds (evaluation excluded) until the validation score first reached X; "
                 "s@orig: the original's best score")
    return "\n".join(lines)


def _seconds_text(seconds: float | None) -> str:
    """Seconds for the table: '-' for never, no decimals from 10 s on."""
    return "-" if seconds is None else f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"


def write_report(report: dict[str, Any], out_dir: str | Path, prefix: str = "bench",
                 latest: str = LATEST_FILE) -> Path:
    """Write the report to a new <prefix>-<UTC time>.json under out_dir (never an existing file) and to latest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=2) + "\n"
    for number in range(1, 1000):
        path = out / (f"{prefix}-{stamp}.json" if number == 1 else f"{prefix}-{stamp}-{number}.json")
        try:
            with path.open("x") as handle:  # "x": fails rather than overwrite, even against a concurrent writer
                handle.write(text)
            break
        except FileExistsError:
            continue
    else:
        raise RuntimeError(f"could not find a new report name for {prefix}-{stamp} under {out}")
    with replaced_atomically(out / latest) as tmp:
        tmp.write_text(text)
    return path


# ----------------------------------------------------------------------------------------------
# The parent: one subprocess per contender


def run_child(module: str, arguments: list[str], what: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m module --child-out FILE *arguments` in a fresh process; return the JSON it wrote there."""
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        result_file = Path(scratch) / "result.json"
        command = [sys.executable, "-m", module, *arguments, "--child-out", str(result_file)]
        child_env = {**course_environment(), **(env or {})}  # the course's TensorFlow settings, as it runs
        completed = subprocess.run(command, cwd=REPO_ROOT, env=child_env, check=False)  # its output streams through
        if completed.returncode != 0 or not result_file.exists():
            raise RuntimeError(f"{what} failed (exit code {completed.returncode}); its output is above")
        return json.loads(result_file.read_text())


def run_contender(name: str, settings: dict[str, Any], measure_matmul: bool) -> dict[str, Any]:
    """Train and measure one pipeline in a fresh Python process; its output streams through."""
    arguments = [
        "--child", name, "--data-dir", settings["data_dir"], "--n-images", str(settings["n_images"]),
        "--epochs", str(settings["course_epochs"] if name == "course" else settings["epochs"]),
        "--patience", str(settings["patience"]), "--finetune-epochs", str(settings["finetune_epochs"]),
    ] + (["--measure-matmul"] if measure_matmul else [])
    return run_child("benchmarks.train_bench", arguments, f"the {name} pipeline")


def main(argv: list[str] | None = None) -> int:
    """Run the contenders one after the other, print the table and write the JSON report."""
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    try:
        settings = resolve_settings(args)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    names = settings["pipelines"]
    print(f"Benchmarking {', '.join(names)} on {settings['data_dir']} "
          f"({settings['n_images'] or 'all'} images; original: up to {settings['epochs']} epochs, "
          f"course: {settings['course_epochs']})", flush=True)
    results = {}
    try:
        for name in names:
            # The matmul rate is measured in the last contender's process, after its peak memory was read.
            results[name] = run_contender(name, settings, measure_matmul=name == names[-1])
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report = build_report(results, settings, started_at, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    print("\n" + format_table(report))
    path = write_report(report, args.out)
    print(f"\nWrote {path} and {path.parent / LATEST_FILE}")
    return 0


# ----------------------------------------------------------------------------------------------
# The child: one contender (TensorFlow is imported here only, never in the parent)


@dataclass
class _Validation:
    """What the per-epoch score needs: network-size images, native masks and the way back to 101x101."""

    images: np.ndarray
    masks_native: np.ndarray
    sizing: Any
    batch_size: int


def child_main(args: argparse.Namespace) -> int:
    """Run one contender (the --child subprocess) and write its measurements as JSON to --child-out."""
    settings = {"data_dir": args.data_dir, "n_images": args.n_images, "epochs": args.epochs,
                "patience": args.patience, "finetune_epochs": args.finetune_epochs}
    result = _run_original(settings) if args.child == "original" else _run_course(settings)
    result["peak_rss_mib"] = peak_rss_mib()
    if args.measure_matmul:
        result["matmul_gflops"] = measure_matmul_gflops()
    Path(args.child_out).write_text(json.dumps(result))
    return 0


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # macOS counts bytes, Linux KiB


def measure_matmul_gflops(sizes: tuple[int, ...] | None = None, repeats: int = MATMUL_REPEATS,
                          warm_up_seconds: float = MATMUL_WARM_UP_S) -> float:
    """Dense float32 tf.matmul rate in GFLOP/s: the best over sizes of the median of `repeats` products."""
    import tensorflow as tf

    from helpers.device import gpu_names

    sizes = sizes or (GPU_MATMUL_SIZES if gpu_names() else CPU_MATMUL_SIZES)
    best = 0.0
    for size in sizes:
        a = tf.random.uniform((size, size), dtype=tf.float32, seed=1)
        b = tf.random.uniform((size, size), dtype=tf.float32, seed=2)
        # Warm-up for a while, not once: kernel selection, thread pools and GPU libraries settle in the first
        # product, but the cores' clocks take longer to reach their speed.
        warm_until = time.perf_counter() + warm_up_seconds
        while True:
            tf.matmul(a, b)[0, 0].numpy()
            if time.perf_counter() >= warm_until:
                break
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            tf.matmul(a, b)[0, 0].numpy()  # fetching one element waits for the whole product
            seconds.append(time.perf_counter() - started)
        best = max(best, 2 * size**3 / statistics.median(seconds) / 1e9)
    return best


def measure_matmul_gflops_for(quick: bool) -> float:
    """The matmul rate; for a quick (script-checking) run a small product, only to fill the column."""
    return measure_matmul_gflops(sizes=(256,), repeats=3, warm_up_seconds=0.2) if quick else measure_matmul_gflops()


def load_original_arrays(data_dir: Path, n_images: int) -> dict[str, Any]:
    """The original notebook's data: every image and mask skimage-resized to 128x128x1, one at a time.

    Also returns the sorted ids, each image's salt coverage (for the shared split) and the native
    masks as booleans (for scoring at 101x101; the original never kept them).
    """
    from skimage.transform import resize

    image_dir, mask_dir = data_dir / "train" / "images", data_dir / "train" / "masks"
    ids = sorted(path.stem for path in image_dir.glob("*.png"))
    ids = ids[:n_images] if n_images else ids
    shape = (ORIGINAL_SIZE, ORIGINAL_SIZE, 1)
    images = np.zeros((len(ids),) + shape, dtype=np.float32)
    masks = np.zeros((len(ids),) + shape, dtype=np.float32)
    masks_native = np.zeros((len(ids), 101, 101), dtype=bool)
    for index, image_id in enumerate(ids):
        image, mask = read_image(image_dir / f"{image_id}.png"), read_mask(mask_dir / f"{image_id}.png")
        # As in the original: bilinear, so resized masks hold soft values at salt edges.
        images[index] = resize(image[..., None], shape, mode="constant", preserve_range=True)
        masks[index] = resize(mask[..., None], shape, mode="constant", preserve_range=True)
        masks_native[index] = mask > 0.5
    coverage = masks_native.reshape(len(ids), -1).mean(axis=1)
    return {"ids": ids, "images": images, "masks": masks, "masks_native": masks_native, "coverage": coverage}


def _run_original(settings: dict[str, Any]) -> dict[str, Any]:
    """The original pipeline: NumPy arrays into model.fit, one-convolution blocks, Adam and plain BCE."""
    import keras

    from helpers.callbacks import ValidationScore
    from helpers.model import build_unet
    from helpers.sizing import Sizing

    keras.utils.set_random_seed(SPLIT_SEED)
    data = load_original_arrays(Path(settings["data_dir"]), settings["n_images"])
    train_idx, val_idx = stratified_split(data["coverage"], VAL_FRACTION, SPLIT_SEED)
    x_train, y_train = data["images"][train_idx], data["masks"][train_idx]
    x_val, y_val = data["images"][val_idx], data["masks"][val_idx]
    model = build_unet(input_size=ORIGINAL_SIZE, base_filters=16, depth=4, dropout=0.05, batch_norm=True,
                       single_conv_blocks=True)
    # Keras' own defaults otherwise (float32; XLA only where Keras turns it on by itself, i.e. on GPUs).
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=ORIGINAL_LEARNING_RATE),
                  loss="binary_crossentropy", metrics=["accuracy"])
    validation = _Validation(x_val, data["masks_native"][val_idx], Sizing(mode="resize", size=ORIGINAL_SIZE),
                             ORIGINAL_BATCH_SIZE)
    history: list[dict[str, float]] = []
    # The course's own scoring callback (the score at 101x101, training and scoring times), then one row each.
    callbacks = [ValidationScore(validation.images, validation.masks_native, validation.sizing,
                                 validation.batch_size),
                 keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: _record(history, logs, "original",
                                                                                         settings["epochs"])),
                 keras.callbacks.ReduceLROnPlateau(monitor="val_loss", **ORIGINAL_REDUCE_LR),
                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings["patience"])]
    model.fit(x_train, y_train, batch_size=ORIGINAL_BATCH_SIZE, epochs=settings["epochs"],
              validation_data=(x_val, y_val), callbacks=callbacks, verbose=0)
    setup = f"float32, Keras defaults, NumPy arrays, batch {ORIGINAL_BATCH_SIZE}, 128x128 resize, no augmentation"
    return _measurements(model, history, validation, len(train_idx), [data["ids"][i] for i in val_idx], setup)


def _record(history: list[dict[str, float]], logs: dict, label: str, epochs: int) -> None:
    """Append an epoch's row in the benchmark's format, and print it."""
    row = {"epoch": len(history) + 1, "stage": 1, "train_seconds": logs["train_seconds"],
           "eval_seconds": logs["eval_seconds"], "score": logs["val_score"], "loss": float(logs.get("loss", np.nan)),
           "val_loss": float(logs.get("val_loss", np.nan))}
    history.append(row)
    print(f"[{label}] epoch {row['epoch']:3d}/{epochs}  loss {row['loss']:.4f}  val_loss {row['val_loss']:.4f}  "
          f"score {row['score']:.4f}  train {row['train_seconds']:.1f}s  eval {row['eval_seconds']:.1f}s", flush=True)


def course_command_line(settings: dict[str, Any], run_dir: Path) -> list[str]:
    """The `python -m helpers.training` arguments of the course's real-data recipe on the benchmark's split.

    The settings give the epochs (quick runs have fewer); REAL_DATA_RECIPE's other fields become flags.
    """
    recipe = flags_of({name: value for name, value in REAL_DATA_RECIPE.items() if name != "epochs"})
    return ["--data-dir", str(settings["data_dir"]), "--n-images", str(settings["n_images"]),
            "--epochs", str(settings["epochs"]), *recipe, "--early-stopping-patience", str(settings["patience"]),
            "--seed", str(SPLIT_SEED), "--val-fraction", str(VAL_FRACTION),
            "--finetune-epochs", str(settings["finetune_epochs"]), "--run-dir", str(run_dir)]


def course_history(run_dir: Path) -> list[dict[str, float]]:
    """Both stages' epochs of a course run, numbered on, in the benchmark's row format."""
    from helpers.run_folder import FINE_TUNED_DIR, read_history

    rows = []
    for stage, folder in ((1, run_dir), (2, run_dir / FINE_TUNED_DIR)):
        for row in read_history(folder):
            rows.append({"epoch": len(rows) + 1, "stage": stage, "train_seconds": row["train_seconds"],
                         "eval_seconds": row["eval_seconds"], "score": row["val_score"], "loss": row["loss"],
                         "val_loss": row["val_loss"]})
    return rows


def _run_course(settings: dict[str, Any]) -> dict[str, Any]:
    """The course's pipeline as `python -m helpers.training` runs it (its main, in this process), read back."""
    from helpers.device import setup_device
    from helpers.prepared_data import prepare_data
    from helpers.run_folder import final_stage, load_run
    from helpers.training import main as training_main

    with tempfile.TemporaryDirectory(prefix="course-bench-") as scratch:
        run_dir = Path(scratch) / "run"
        training_main(course_command_line(settings, run_dir))
        run = load_run(final_stage(run_dir))
        config, history = load_run(run_dir).config, course_history(run_dir)
        data = prepare_data(config, progress=False)  # the run's split, again, for the inference rate
        validation = _Validation(data.x_val, data.val_masks_native, data.sizing, config.batch_size)
        model = run.load_best_model()
        setup = setup_device(config.mixed_precision, config.jit_compile, config.distribute)
        described = (f"{setup.summary()}, tf.data, batch {config.batch_size * setup.replicas}, "
                     f"{config.img_size}x{config.img_size} {config.sizing}, augment {config.augment}, {config.loss}"
                     + (f" then {FINE_TUNE_LOSS} fine-tuning" if settings["finetune_epochs"] > 0 else ""))
        return _measurements(model, history, validation, len(data.train_idx),
                             [data.dataset.ids[i] for i in data.val_idx], described)


def _measurements(model: Any, history: list[dict[str, float]], validation: _Validation, n_train: int,
                  val_ids: list[str], setup: str) -> dict[str, Any]:
    """What the parent needs from one contender (peak memory is added last, by child_main)."""
    from helpers.device import gpu_names
    from helpers.model import conv_flops_per_image

    gpus = gpu_names()
    return {
        "history": history,
        "n_train": int(n_train),
        "n_val": len(val_ids),
        "val_digest": hashlib.sha256("\n".join(val_ids).encode()).hexdigest(),
        "train_images_per_s": median_train_rate(history, n_train),
        "infer_images_per_s": _inference_rate(model, validation),
        "train_flops_per_image": TRAIN_FLOPS_FACTOR * conv_flops_per_image(model),
        "parameters": int(model.count_params()),
        "setup": setup,
        "device": gpus[0] if gpus else "cpu",
    }


def _inference_rate(model: Any, validation: _Validation) -> float:
    """Median over INFERENCE_REPEATS of validation images per second through model.predict."""
    seconds = []
    for _ in range(INFERENCE_REPEATS):
        started = time.perf_counter()
        model.predict(validation.images, batch_size=validation.batch_size, verbose=0)
        seconds.append(time.perf_counter() - started)
    return len(validation.images) / statistics.median(seconds)


if __name__ == "__main__":
    sys.exit(main())
