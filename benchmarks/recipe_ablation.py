"""What each change from the original recipe is worth: the changes added one at a time, several seeds, one split.

Notebook 04 teaches the changes to the original tutorial's recipe (helpers.config.ORIGINAL_RECIPE) that make
a short run converge: batch-norm momentum 0.9, a warm-up then cosine schedule at a higher peak rate, and
batches of 16; notebook 04's short run also trains without augmentation. This script trains the original
recipe, then adds the changes one at a time (each step keeps the previous ones, so the last steps are the
course's recipe and notebook 04's run), every step with the same seeds on one fixed
split, and reports each step's validation score with a paired bootstrap interval (helpers.comparison) against
the original and against the step before it.

    python -m benchmarks.recipe_ablation                        # built-in data, 1200 sections, 5 epochs, 2 seeds
    python -m benchmarks.recipe_ablation --n-images 0 --epochs 10 --seeds 3 --data-dir ../shared/data/tgs-salt

The table goes to stdout, the numbers to build/bench/recipe-<UTC time>.json (and recipe-latest.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.train_bench import write_report
from helpers.comparison import paired_bootstrap
from helpers.config import ORIGINAL_RECIPE, SHORT_RUN_AUGMENT, TrainConfig
from helpers.cpu import cpu_model

VAL_FRACTION = 0.2  # more validation sections than a run's 10 %: narrower intervals for the same training
DEFAULT_OUT_DIR = Path(__file__).resolve().parents[1] / "build" / "bench"
COURSE = TrainConfig()
STEPS = (
    ("the original recipe", {}),
    ("+ batch-norm momentum 0.9", {"batch_norm_momentum": COURSE.batch_norm_momentum}),
    (f"+ warm-up and cosine decay from {COURSE.learning_rate:g}",
     {"lr_schedule": COURSE.lr_schedule, "learning_rate": COURSE.learning_rate, "warmup_epochs": COURSE.warmup_epochs}),
    (f"+ batch {COURSE.batch_size} (the course's recipe)", {"batch_size": COURSE.batch_size}),
    ("+ no augmentation (notebook 04's short run)", {"augment": SHORT_RUN_AUGMENT}),
)


def step_configs(base: TrainConfig) -> dict[str, TrainConfig]:
    """Each step's config: the original recipe on `base`'s data and budget, then the changes added in turn."""
    config = dataclasses.replace(base, **ORIGINAL_RECIPE)
    configs = {}
    for name, change in STEPS:
        config = dataclasses.replace(config, **change)
        configs[name] = config
    course_fields = {key: getattr(COURSE, key) for key in (*ORIGINAL_RECIPE, "warmup_epochs")}
    assert {key: getattr(config, key) for key in course_fields} == course_fields, "the last step is the course's"
    return configs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """--data-dir, --n-images, --epochs, --seeds, --out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe_ablation", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="", help="a folder in Kaggle's layout (default: the built-in set)")
    parser.add_argument("--n-images", type=int, default=1200, help="labelled sections, 0 = all (default 1200)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of every run (default 5)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per step: 0, 1, ... (default 2)")
    parser.add_argument("--out", default=str(DEFAULT_OUT_DIR), help=f"folder for the JSON (default {DEFAULT_OUT_DIR})")
    args = parser.parse_args(argv)
    for name, smallest in (("n_images", 0), ("epochs", 2), ("seeds", 1)):
        if getattr(args, name) < smallest:
            parser.error(f"--{name.replace('_', '-')} must be at least {smallest}, got {getattr(args, name)}")
    return args


def summarise(scores: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One row per step: its mean score, and paired bootstrap differences to the original and the step before."""
    names = list(scores)
    rows = []
    for index, name in enumerate(names):
        row: dict[str, Any] = {"name": name, "mean": float(scores[name].mean()),
                               "per_seed": [float(value) for value in scores[name].mean(axis=1)]}
        if index:
            for key, other in (("vs_original", names[0]), ("vs_previous", names[index - 1])):
                row[key] = paired_bootstrap(scores[name], scores[other]).to_json(name, other)
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    def interval(result: dict[str, Any] | None) -> str:
        if result is None:
            return "-"
        return f"{result['difference']:+.3f} [{result['low']:+.3f}, {result['high']:+.3f}]"

    lines = ["| step | validation score (mean; per seed) | vs the original (95 % interval) | vs the step before |",
             "| --- | --- | --- | --- |"]
    for row in rows:
        per_seed = ", ".join(f"{value:.3f}" for value in row["per_seed"])
        lines.append(f"| {row['name']} | {row['mean']:.3f} ({per_seed}) | {interval(row.get('vs_original'))} | "
                     f"{interval(row.get('vs_previous'))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from helpers.data import resolve_data_dir
    from helpers.prepared_data import prepare_data
    from helpers.training import train

    base = TrainConfig(data_dir=str(resolve_data_dir(args.data_dir).resolve()), n_images=args.n_images,
                       epochs=args.epochs, val_fraction=VAL_FRACTION, split_seed=0, progress=False)
    configs = step_configs(base)
    data = prepare_data(base, progress=False)  # every step and seed shares this split
    scores: dict[str, list[np.ndarray]] = {name: [] for name in configs}
    seconds: dict[str, float] = {name: 0.0 for name in configs}
    histories: dict[str, list[list[float]]] = {name: [] for name in configs}
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="recipe-ablation-") as scratch:
        for seed in range(args.seeds):
            for name, config in configs.items():
                result = train(dataclasses.replace(config, seed=seed), run_root=scratch, data=data)
                scores[name].append(np.array(result.metrics["val_section_scores"]))
                seconds[name] += result.metrics["train_seconds"]
                histories[name].append([row["val_score"] for row in result.history])
                print(f"seed {seed}  {name:45s} {result.metrics['val_score']:.3f}  "
                      f"({result.metrics['train_seconds']:.0f} s of training)", flush=True)
    table = {name: np.stack(rows) for name, rows in scores.items()}
    rows = summarise(table)
    for row in rows:
        row["train_seconds"] = seconds[row["name"]]
        row["val_scores_per_epoch"] = histories[row["name"]]
    report = {"started": started_at, "cpu": cpu_model(), "data_dir": base.data_dir, "n_train": len(data.train_idx),
              "n_val": len(data.val_idx), "epochs": args.epochs, "seeds": args.seeds,
              "device": result.metrics["device"], "steps": rows}
    print(format_table(rows))
    print(f"written to {write_report(report, args.out, prefix='recipe', latest='recipe-latest.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
