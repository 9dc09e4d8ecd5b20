"""What limits training throughput: the course's U-Net under one change at a time, on this machine.

Each variant trains in its own subprocess (environment variables such as TF_ENABLE_ONEDNN_OPTS and the
thread settings only act before TensorFlow starts) on random arrays already in memory, so the input
pipeline costs nothing unless the variant adds it. For each it reports training images per second (batch
size over the median training step of the timed epochs, after a warm-up epoch: a median of steps shrugs
off the seconds-long stalls that shared machines show now and then, which a whole epoch's time does not),
the same from whole epochs, and the fraction of the machine's dense float32 matmul rate that the model's
counted training FLOPs reach. The matmul rate is measured again right after each variant: a shared machine's
speed drifts over a run (benchmarks/README.md shows by how much), and a fraction is only
meaningful against the rate of the same minutes. With --interleave the chosen variants share one process
and take turns epoch by epoch, so that drift falls on all of them alike: the way to compare close variants.

    python -m benchmarks.throughput                 # every variant (30-40 minutes on 2 cores, XLA a third of it)
    python -m benchmarks.throughput --only baseline,xla --epochs 5
    python -m benchmarks.throughput --interleave --only baseline,no_dropout,no_batch_norm,convolutions_only
    python -m benchmarks.throughput --quick         # a tiny model and a few steps: checks the script works

The table goes to stdout, the numbers to a new build/bench/throughput-<UTC time>.json and to
build/bench/latest-throughput.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.train_bench import (
    DEFAULT_OUT_DIR,
    TRAIN_FLOPS_FACTOR,
    cpu_info,
    matmul_fraction,
    measure_matmul_gflops_for,
    run_child,
    write_report,
)

LATEST_FILE = "latest-throughput.json"


@dataclass(frozen=True)
class Variant:
    """One training set-up: the course's defaults unless a field says otherwise."""

    name: str
    what: str
    img_size: int = 112
    batch_size: int = 32
    base_filters: int = 16
    depth: int = 4
    precision: str = "auto"  # MIXED_PRECISION, as the course reads it: "auto" is what the machine at hand picks
    jit_compile: bool = False
    pipeline: str = "arrays"  # "arrays": cached tensors; "course": helpers.pipeline with augmentation
    fused_batch_norm: bool = True  # the course's default (TrainConfig.fused_batch_norm)
    dropout: float = 0.05  # the course's default (TrainConfig.dropout)
    batch_norm: bool = True
    env: dict[str, str] = field(default_factory=dict)


VARIANTS = (
    Variant("baseline", "the course's network with the original's batch 32: precision auto, 112x112, fused batch "
                        "norm, oneDNN on, TF's threads (helpers.fitting.build_and_compile, as training compiles it)"),
    Variant("float32", "float32 (MIXED_PRECISION off; what auto picks on a CPU without native bfloat16)",
            precision="off"),
    Variant("course_pipeline", "the course's tf.data pipeline (shuffle, flips, brightness/contrast)",
            pipeline="course"),
    Variant("batch_8", "batch 8", batch_size=8),
    Variant("batch_16", "batch 16 (TrainConfig's default)", batch_size=16),
    Variant("batch_64", "batch 64", batch_size=64),
    Variant("size_128", "padded to 128 instead of 112 (31 % more FLOPs per image)", img_size=128),
    Variant("keras_batch_norm", "Keras' own BatchNormalization instead of the fused kernel (the course before)",
            fused_batch_norm=False),
    Variant("xla", "XLA (jit_compile=True)", jit_compile=True),
    Variant("mixed_precision", "MIXED_PRECISION on (mixed_bfloat16 on a CPU, mixed_float16 on a GPU)", precision="on"),
    Variant("onednn_off", "TF_ENABLE_ONEDNN_OPTS=0", env={"TF_ENABLE_ONEDNN_OPTS": "0"}),
    Variant("one_inter_op_thread", "TF_NUM_INTEROP_THREADS=1 (one op at a time, all cores inside it)",
            env={"TF_NUM_INTEROP_THREADS": "1"}),
    # Ablations: different networks, not options. They measure what the layers without counted FLOPs cost
    # inside a real training step, where the layer profile times each layer alone.
    Variant("no_dropout", "ablation: no dropout layers (what dropout costs)", dropout=0.0),
    Variant("no_batch_norm", "ablation: no batch norm (what the fused batch norm costs)", batch_norm=False),
    Variant("convolutions_only", "ablation: neither dropout nor batch norm (convolutions, ReLU, pooling, concat)",
            dropout=0.0, batch_norm=False),
)
QUICK = {"img_size": 32, "batch_size": 8, "base_filters": 4, "depth": 2}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: --only, --epochs, --steps, --quick, --out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all): "
                        + ", ".join(v.name for v in VARIANTS))
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per variant, after one warm-up epoch")
    parser.add_argument("--steps", type=int, default=12, help="training steps per epoch")
    parser.add_argument("--quick", action="store_true", help="a tiny model, 1 timed epoch of 3 steps (CI)")
    parser.add_argument("--interleave", action="store_true",
                        help="train the chosen variants in one process, taking turns epoch by epoch, so the "
                             "machine's drift falls on all alike (they must share environment and policy)")
    parser.add_argument("--out", default=str(DEFAULT_OUT_DIR), help=f"folder for the JSON (default {DEFAULT_OUT_DIR})")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # a JSON list of Variants
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.steps < 1:
        parser.error(f"--epochs and --steps must be at least 1, got {args.epochs} and {args.steps}")
    if args.quick:
        args.epochs, args.steps = 1, 3
    return args


def select_variants(only: str, quick: bool = False) -> list[Variant]:
    """The variants named in `only` (all when empty), shrunk to a tiny model when quick."""
    known = {variant.name: variant for variant in VARIANTS}
    names = [name.strip() for name in only.split(",") if name.strip()] or list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"--only names unknown variants {unknown}; choose from {sorted(known)}")
    return [replace(known[name], **QUICK) if quick else known[name] for name in names]


def format_table(rows: list[dict[str, Any]], quick: bool = False, interleaved: bool = False) -> str:
    """One line per variant: images/s (median step; whole epochs), x baseline, matmul rate and fraction."""
    base = next((row["train_images_per_s"] for row in rows if row["name"] == "baseline"), None)
    rates = [row["matmul_gflops"] for row in rows]
    measured = (f"measured once, after the variants' shared process: {rates[0]:.1f} GFLOP/s" if interleaved else
                f"measured after each variant: median {statistics.median(rates):.1f} GFLOP/s "
                f"({min(rates):.1f}-{max(rates):.1f})")
    lines = [f"dense float32 matmul, {measured}"
             + (f" [quick: every variant on a tiny model {QUICK}, only to check the script]" if quick else ""),
             f"{'variant':<22}{'img/s':>8}{'epochs':>8}{'x base':>8}{'GFLOP/s':>9}{'matmul %':>10}  what",
             "-" * 100]
    for row in rows:
        relative = f"{row['train_images_per_s'] / base:.2f}" if base else "-"
        fraction = 100 * matmul_fraction(row["train_images_per_s"], row["train_flops_per_image"],
                                         row["matmul_gflops"])
        lines.append(f"{row['name']:<22}{row['train_images_per_s']:>8.1f}{row['epoch_images_per_s']:>8.1f}"
                     f"{relative:>8}{row['matmul_gflops']:>9.1f}{fraction:>9.1f}%  {row['what']}")
    return "\n".join(lines)


def run_variants(variants: list[Variant], epochs: int, steps: int) -> list[dict[str, Any]]:
    """Measure the variants in one fresh Python process with the first one's environment."""
    arguments = ["--child", json.dumps([asdict(variant) for variant in variants]),
                 "--epochs", str(epochs), "--steps", str(steps)]
    what = f"variant {variants[0].name}" if len(variants) == 1 else "variants " + ", ".join(v.name for v in variants)
    return run_child("benchmarks.throughput", arguments, what, env=variants[0].env)["results"]


def check_interleavable(variants: list[Variant]) -> None:
    """Raise ValueError naming the first variant that cannot share a process with the first one."""
    first = variants[0]
    for variant in variants[1:]:
        if variant.env != first.env or variant.precision != first.precision:
            raise ValueError(f"--interleave: variant {variant.name!r} needs its own process (environment "
                             f"{variant.env} and precision {variant.precision!r} differ from {first.name!r}'s); "
                             "run it without --interleave")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen variants (each in its own process, or all in one with --interleave), each process followed
    by the matmul rate; print the table and write the JSON."""
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    try:
        variants = select_variants(args.only, args.quick)
        if args.interleave:
            check_interleavable(variants)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    groups = [variants] if args.interleave else [[variant] for variant in variants]
    rows = []
    try:
        for group in groups:
            for variant in group:
                print(f"{variant.name}: {variant.what} ...", flush=True)
            results = run_variants(group, args.epochs, args.steps)
            matmul_gflops = measure_matmul_gflops_for(args.quick)  # here, in the minutes the variants ran
            rows += [{"name": variant.name, "what": variant.what, **result, "matmul_gflops": matmul_gflops}
                     for variant, result in zip(group, results)]
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n" + format_table(rows, args.quick, args.interleave))
    matmul_gflops = statistics.median(row["matmul_gflops"] for row in rows)
    report = {"variants": rows, "matmul_gflops": matmul_gflops, "cpu": cpu_info(), "quick": args.quick,
              "epochs": args.epochs, "steps": args.steps, "interleaved": args.interleave,
              "finished_at": datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")}
    path = write_report(report, args.out, prefix="throughput", latest=LATEST_FILE)
    print(f"\nWrote {path} and {path.parent / LATEST_FILE}")
    return 0


def step_timer_class() -> type:
    """A Keras callback class that records the seconds of every training step (input included)."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            self._started = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            # Keras hands logs over as tensors; the step has run once this callback is reached on a CPU,
            # and reading the loss waits for it on a GPU.
            if logs and "loss" in logs:
                float(logs["loss"])
            self.seconds.append(time.perf_counter() - self._started)

    return StepTimer


def variant_config(variant: Variant) -> Any:
    """The TrainConfig of a variant: the course's defaults, with the variant's changes."""
    from helpers.config import TrainConfig

    return TrainConfig(img_size=variant.img_size, sizing="pad" if variant.img_size >= 101 else "resize",
                       batch_size=variant.batch_size, base_filters=variant.base_filters, depth=variant.depth,
                       mixed_precision=variant.precision, jit_compile="on" if variant.jit_compile else "off",
                       fused_batch_norm=variant.fused_batch_norm, dropout=variant.dropout,
                       batch_norm=variant.batch_norm)


def build_variant_model(variant: Variant) -> Any:
    """The course's U-Net with the variant's settings, compiled as training compiles it (helpers.fitting)."""
    from helpers.device import setup_device
    from helpers.fitting import build_and_compile

    config = variant_config(variant)
    return build_and_compile(config, setup_device(config.mixed_precision, config.jit_compile, config.distribute))


def child_main(args: argparse.Namespace) -> int:
    """Train the given variants in this process (the --child subprocess); write their rates to --child-out.

    With several variants (--interleave) they take turns epoch by epoch, the first of each round rotating, so
    the machine's drift and stalls fall on all of them alike.
    """
    import keras

    from helpers.model import conv_flops_per_image

    variants = [Variant(**fields) for fields in json.loads(args.child)]  # one precision: the parent checked
    keras.utils.set_random_seed(0)
    StepTimer = step_timer_class()
    runs = []
    for variant in variants:
        model, dataset = prepare_variant(variant, args.steps)
        model.fit(dataset, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing, kernel selection, caches
        runs.append({"variant": variant, "model": model, "dataset": dataset, "timer": StepTimer(), "seconds": []})
    for epoch in range(args.epochs):
        for run in runs[epoch % len(runs):] + runs[:epoch % len(runs)]:
            started = time.perf_counter()
            run["model"].fit(run["dataset"], epochs=1, verbose=0, shuffle=False, callbacks=[run["timer"]])
            run["seconds"].append(time.perf_counter() - started)
        if len(runs) > 1:  # one process runs them all: show progress
            print(f"round {epoch + 1}/{args.epochs}: " + ", ".join(
                f"{run['variant'].name} {run['seconds'][-1]:.1f} s" for run in runs), flush=True)
    results = []
    for run in runs:
        variant, steps = run["variant"], run["timer"].seconds
        results.append({"train_images_per_s": variant.batch_size / statistics.median(steps),
                        "epoch_images_per_s": variant.batch_size * args.steps / statistics.median(run["seconds"]),
                        "train_flops_per_image": TRAIN_FLOPS_FACTOR * conv_flops_per_image(run["model"]),
                        "epoch_seconds": run["seconds"], "step_seconds": steps, "variant": asdict(variant)})
    Path(args.child_out).write_text(json.dumps({"results": results}))
    return 0


def prepare_variant(variant: Variant, steps: int) -> tuple[Any, Any]:
    """The variant's compiled model and a dataset of `steps` batches of random images and masks."""
    import numpy as np
    import tensorflow as tf

    from helpers.pipeline import make_dataset

    n_images = variant.batch_size * steps
    shape = (n_images, variant.img_size, variant.img_size, 1)
    rng = np.random.default_rng(0)
    images = rng.random(shape, dtype=np.float32)
    masks = (rng.random(shape) > 0.5).astype(np.float32)
    if variant.pipeline == "course":
        dataset = make_dataset(images, masks, variant.batch_size, training=True, seed=0)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(variant.batch_size).cache().prefetch(2)
    return build_variant_model(variant), dataset


if __name__ == "__main__":
    sys.exit(main())
