"""Where a training step's time goes: each layer of the course's U-Net timed on its own, forward and backward.

Every layer is rebuilt from its config and run alone on random inputs of its real shape (batch 32 at 112x112
by default), forward in training mode plus the gradients with respect to its inputs and weights, as in a
training step. The table gives each layer's milliseconds per batch, its counted FLOPs and the GFLOP/s they
reach; the summary groups layers by kind (convolutions per U level, batch norm, activations, the rest) and
compares the sum with a whole training step of the model (which adds the loss, the optimizer update and the
framework's overhead, and lets TensorFlow overlap or fuse layers).

    python -m benchmarks.layer_profile                  # the course's U-Net (about two minutes on 2 cores)
    python -m benchmarks.layer_profile --keras-batch-norm   # with Keras' own batch norm instead of the fused one
    python -m benchmarks.layer_profile --channels-first     # every layer on channels-first (NCHW) tensors
    python -m benchmarks.layer_profile --quick          # a tiny U-Net: checks the script works

The table goes to stdout, the numbers to a new build/bench/layer-profile-<UTC time>.json (and
build/bench/latest-layer-profile.json).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from benchmarks.train_bench import (
    DEFAULT_OUT_DIR,
    TRAIN_FLOPS_FACTOR,
    cpu_info,
    measure_matmul_gflops_for,
    write_report,
)
from helpers.tensorflow_env import apply_course_environment

LATEST_FILE = "latest-layer-profile.json"
QUICK = {"img_size": 32, "base_filters": 4, "depth": 2, "batch_size": 8, "repeats": 3}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: model size, batch, repeats, quick mode and the output folder."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layer_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--img-size", type=int, default=112, help="network input side (default 112)")
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per layer; the median is reported")
    parser.add_argument("--keras-batch-norm", action="store_true",
                        help="Keras' own BatchNormalization instead of the course's fused one")
    parser.add_argument("--channels-first", action="store_true",
                        help="time every layer on channels-first (NCHW) tensors instead of TensorFlow's "
                             "channels-last; implies --keras-batch-norm (the fused layer is channels-last only) "
                             "and leaves out the whole training step (the model is channels-last)")
    parser.add_argument("--quick", action="store_true", help="a tiny U-Net and few repeats, to check the script")
    parser.add_argument("--out", default=str(DEFAULT_OUT_DIR), help="folder for the JSON report")
    args = parser.parse_args(argv)
    for name in ("img_size", "base_filters", "depth", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1; got {getattr(args, name)}")
    if args.channels_first:
        args.keras_batch_norm = True
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    return args


def layer_kind(class_name: str, output_side: int, input_side: int) -> str:
    """The group a layer is reported in: convolutions by the side they work at, the rest by what they are."""
    if class_name == "Conv2D":
        return f"conv {output_side}x{output_side}"
    if class_name == "Conv2DTranspose":
        return f"transposed conv {input_side}->{output_side}"
    return {"BatchNormalization": "batch norm", "FusedBatchNormalization": "batch norm", "Activation": "activation",
            "ReLU": "activation", "MaxPooling2D": "pooling", "Dropout": "dropout",
            "Concatenate": "concatenate"}.get(class_name, "other")


def channels_first_config(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """A layer's config for channels-first (NCHW) tensors: its data format, or its channel axis, moved."""
    config = dict(config)
    if "data_format" in config:
        config["data_format"] = "channels_first"
    if class_name in ("BatchNormalization", "Concatenate"):
        config["axis"] = 1
    return config


def summarise(rows: list[dict[str, Any]], step_ms: float | None, matmul_gflops: float) -> list[dict[str, Any]]:
    """Per kind of layer, then for the sum of layers and the whole step (when timed): ms, share, FLOPs, rates."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["kind"]].append(row)
    total_ms = sum(row["ms"] for row in rows)

    def entry(kind: str, members: list[dict[str, Any]], ms: float) -> dict[str, Any]:
        gflop = sum(row["train_gflop"] for row in members)
        rate = gflop / (ms / 1000) if ms > 0 else 0.0
        return {"kind": kind, "layers": len(members), "ms": ms, "share_of_layers": ms / total_ms if total_ms else 0.0,
                "train_gflop": gflop, "gflops": rate, "matmul_fraction": rate / matmul_gflops if matmul_gflops else 0.0}

    summary = [entry(kind, members, sum(row["ms"] for row in members)) for kind, members in groups.items()]
    summary.sort(key=lambda group: -group["ms"])
    totals = [entry("sum of layers", rows, total_ms)]
    if step_ms is not None:
        totals.append(entry("whole training step", rows, step_ms))
    return summary + totals


def format_table(rows: list[dict[str, Any]], summary: list[dict[str, Any]], matmul_gflops: float,
                 settings: dict[str, Any]) -> str:
    """The layer table, then the summary by kind."""
    lines = [f"U-Net {settings['img_size']}x{settings['img_size']}, {settings['base_filters']} base filters, depth "
             f"{settings['depth']}, batch {settings['batch_size']}; dense float32 matmul {matmul_gflops:.1f} GFLOP/s"
             + (" [quick: a tiny model, only to check the script]" if settings.get("quick") else "")
             + ("; every layer on channels-first (NCHW) tensors" if settings.get("channels_first") else ""),
             "ms and GFLOP are per batch, forward and backward; a share is of the sum of the layers timed alone",
             "", f"{'layer':<28}{'kind':<26}{'output':>16}{'ms':>9}{'GFLOP':>8}{'GFLOP/s':>9}", "-" * 96]
    for row in rows:
        output = "x".join(str(side) for side in row["output_shape"][1:])
        lines.append(f"{row['name']:<28}{row['kind']:<26}{output:>16}{row['ms']:>9.2f}{row['train_gflop']:>8.2f}"
                     f"{row['gflops']:>9.1f}")
    lines += ["", f"{'by kind':<34}{'layers':>7}{'ms':>10}{'share':>8}{'GFLOP':>8}{'GFLOP/s':>9}{'of matmul':>11}",
              "-" * 87]
    for group in summary:
        share = f"{100 * group['share_of_layers']:.0f}%"
        fraction = f"{100 * group['matmul_fraction']:.0f}%" if group["train_gflop"] else "-"
        lines.append(f"{group['kind']:<34}{group['layers']:>7}{group['ms']:>10.1f}{share:>8}"
                     f"{group['train_gflop']:>8.2f}{group['gflops']:>9.1f}{fraction:>11}")
    return "\n".join(lines)


def time_layer(layer: Any, batch_size: int, repeats: int, needs_input_gradient: bool,
               channels_first: bool = False) -> float:
    """Median seconds of one forward (training mode) and backward pass of a fresh copy of layer."""
    import tensorflow as tf

    several = isinstance(layer.input, list)  # Concatenate takes a list of tensors
    inputs = layer.input if several else [layer.input]
    shapes = [tuple(t.shape[1:]) for t in inputs]
    config = layer.get_config()
    if channels_first:
        shapes = [(shape[-1], *shape[:-1]) for shape in shapes]
        config = channels_first_config(type(layer).__name__, config)
    tensors = [tf.random.uniform((batch_size, *shape), dtype=tf.float32, seed=i) for i, shape in enumerate(shapes)]
    copy = layer.__class__.from_config(config)
    copy(tensors if several else tensors[0])  # builds the weights

    @tf.function
    def step(values):
        with tf.GradientTape() as tape:
            tape.watch(values)
            output = copy(values if several else values[0], training=True)
            loss = tf.reduce_sum(output)
        targets = (list(values) if needs_input_gradient else []) + copy.trainable_variables
        return tape.gradient(loss, targets) if targets else [output]

    for _ in range(2):  # tracing, kernel selection
        step(tensors)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        results = step(tensors)
        float(tf.reduce_sum(results[0][..., :1]))  # fetching a value waits for the step to finish
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def time_training_step(model: Any, batch_size: int, repeats: int) -> float:
    """Median seconds of one whole training step of the model (loss, gradients and Adam update)."""
    import keras
    import numpy as np

    side = model.input.shape[1]
    rng = np.random.default_rng(0)
    images = rng.random((batch_size, side, side, 1), dtype=np.float32)
    masks = (rng.random((batch_size, side, side, 1)) > 0.5).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", jit_compile=False)
    for _ in range(3):
        model.train_on_batch(images, masks)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.train_on_batch(images, masks)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def profile(img_size: int, base_filters: int, depth: int, batch_size: int, repeats: int,
            fused_batch_norm: bool = True, channels_first: bool = False) -> dict[str, Any]:
    """Every layer's time and FLOPs, and the whole training step's time (channels-last only, else None)."""
    from keras import layers

    from helpers.model import build_unet, conv_multiply_adds

    model = build_unet(input_size=img_size, base_filters=base_filters, depth=depth, fused_batch_norm=fused_batch_norm)
    rows = []
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        is_conv = isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose))
        flops = TRAIN_FLOPS_FACTOR * 2 * conv_multiply_adds(layer) * batch_size if is_conv else 0
        fed_by_input = layer.input is model.input  # the first layer needs no gradient for the images
        seconds = time_layer(layer, batch_size, repeats, needs_input_gradient=not fed_by_input,
                             channels_first=channels_first)
        input_side = (layer.input[0] if isinstance(layer.input, list) else layer.input).shape[1]
        rows.append({"name": layer.name, "kind": layer_kind(type(layer).__name__, layer.output.shape[1], input_side),
                     "output_shape": list(layer.output.shape), "ms": 1000 * seconds,
                     "train_gflop": flops / 1e9, "gflops": flops / 1e9 / seconds})
    step_ms = None if channels_first else 1000 * time_training_step(model, batch_size, repeats)
    return {"rows": rows, "step_ms": step_ms}


def main(argv: list[str] | None = None) -> int:
    """Profile the U-Net's layers, print the tables and write the JSON report."""
    args = parse_args(argv)
    settings = {name: getattr(args, name) for name in ("img_size", "base_filters", "depth", "batch_size",
                                                        "repeats", "quick", "keras_batch_norm", "channels_first")}
    measured = profile(args.img_size, args.base_filters, args.depth, args.batch_size, args.repeats,
                       fused_batch_norm=not args.keras_batch_norm, channels_first=args.channels_first)
    matmul_gflops = measure_matmul_gflops_for(args.quick)
    summary = summarise(measured["rows"], measured["step_ms"], matmul_gflops)
    print(format_table(measured["rows"], summary, matmul_gflops, settings))
    report = {"settings": settings, "layers": measured["rows"], "summary": summary, "step_ms": measured["step_ms"],
              "matmul_gflops": matmul_gflops, "cpu": cpu_info(),
              "finished_at": datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")}
    path = write_report(report, args.out, prefix="layer-profile", latest=LATEST_FILE)
    print(f"\nWrote {path} and {path.parent / LATEST_FILE}")
    return 0


if __name__ == "__main__":
    apply_course_environment()  # oneDNN on, as the course trains, before profile() loads TensorFlow
    sys.exit(main())
