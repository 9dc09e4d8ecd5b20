"""Render the README's results figures from a finished training run on the real TGS data.

    python docs/make_results_figures.py --run-dir runs/real-default-112 --data-dir ../shared/data/tgs-salt

Writes docs/figures/real_run_learning_curves.png, real_run_threshold_sweep.png and
real_run_scores_by_coverage.png (and real_run_stage_scores.png for a fine-tuned second stage: the first
stage's learning curves, the rest from the run given), and prints the numbers behind them. Every figure is an aggregate
(losses, scores, counts): none draws a real section or mask, so they may be committed. Prediction
panels for the README come from a run on the built-in synthetic data instead (see the README).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from helpers.coverage import coverage_class  # noqa: E402
from helpers.metrics import best_threshold, competition_score_per_image  # noqa: E402
from helpers.plotting import (  # noqa: E402
    plot_learning_curves,
    plot_scores_by_class,
    plot_stage_scores,
    plot_threshold_sweep,
    save_figure,
)
from helpers.predict import predict_probabilities  # noqa: E402
from helpers.prepared_data import prepare_data  # noqa: E402
from helpers.run_folder import load_run  # noqa: E402

FIGURES = PROJECT_ROOT / "docs" / "figures"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="a finished run folder (with metrics.json)")
    parser.add_argument("--data-dir", required=True, help="the real data the run was trained on")
    parser.add_argument("--out", default=str(FIGURES), help="folder for the figures")
    args = parser.parse_args(argv)

    run = load_run(args.run_dir)
    if not run.finished:
        parser.error(f"--run-dir {run.folder} holds no finished run (no metrics.json); let the training finish")
    config = dataclasses.replace(run.config, data_dir=args.data_dir, progress=False)
    data = prepare_data(config, progress=False)  # the run's own seeded split
    truth = data.val_masks_native
    probabilities = predict_probabilities(run.load_best_model(), data.val_images_native, data.sizing,
                                          batch_size=config.batch_size, tta=True)
    thresholds = np.round(np.arange(0.30, 0.71, 0.025), 3)
    chosen, sweep = best_threshold(truth, probabilities, thresholds)
    per_image = competition_score_per_image(truth, probabilities, chosen)
    classes = coverage_class((truth > 0.5).reshape(len(truth), -1).mean(axis=1))

    out = Path(args.out)
    figures = [("real_run_threshold_sweep", plot_threshold_sweep(thresholds, sweep, chosen)),
               ("real_run_scores_by_coverage", plot_scores_by_class(classes, per_image))]
    if config.init_from:  # a second stage: its learning curves are the first stage's, then both stages' scores
        first = load_run(config.init_from)
        figures += [
            ("real_run_learning_curves", plot_learning_curves(first.history, best_epoch=first.metrics["best_epoch"])),
            ("real_run_stage_scores", plot_stage_scores({f"1: {first.config.loss}": first.history,
                                                         f"2: {config.loss}": run.history})),
        ]
    else:
        curves = plot_learning_curves(run.history, best_epoch=run.metrics["best_epoch"])
        figures.append(("real_run_learning_curves", curves))
    for name, figure in figures:
        print("wrote", save_figure(figure, name, out))
    print(f"threshold {chosen:.3f}: score {per_image.mean():.4f} with flip TTA")
    for label in np.unique(classes):
        members = classes == label
        print(f"coverage class {label:2d}: n={np.sum(members):3d}  score {per_image[members].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
