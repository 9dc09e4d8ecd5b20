"""Figures of notebook 04: which pixels each loss pushes, predictions as training goes, the recipe step by step.

Like helpers.plotting (whose section drawing they share), the functions return a matplotlib Figure built
without pyplot: leave one as a cell's last expression to show it, save it with helpers.plotting.save_figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from helpers.plotting import MASK_COLOUR, PANEL_SIZE, _as_2d, _check_lengths, _draw_outline, show_section

GRADIENT_CMAP = "RdBu_r"  # blue: a gradient step raises the logit (towards salt); red: lowers it
PROBABILITY_CMAP = "magma"


def plot_gradient_maps(truth: np.ndarray, probabilities: np.ndarray, gradients: Mapping[str, np.ndarray],
                       title: str = "") -> Figure:
    """One row: the prediction with the truth outlined, then each loss's d loss / d logit map (own colour scale).

    Each gradient panel says how many pixels the loss pushes at all; zero is white, so a pixel that a loss
    ignores is blank. Its colour scale ends at the 95th percentile of the pushes: the few beyond take its end colour.
    """
    truth, probabilities = _as_2d(truth, "truth"), _as_2d(probabilities, "probabilities")
    maps = {name: _as_2d(gradient, name) for name, gradient in gradients.items()}
    wrong = [name for name, gradient in maps.items() if gradient.shape != truth.shape]
    if probabilities.shape != truth.shape or wrong:
        raise ValueError(f"every map must have the truth's shape {truth.shape}: "
                         f"{['probabilities'] * (probabilities.shape != truth.shape) + wrong}")
    fig = Figure(figsize=(PANEL_SIZE * (1 + len(maps)) + 0.6 * len(maps), PANEL_SIZE + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 1 + len(maps)))
    show_section(axes[0], probabilities, truth, "prediction p (truth outlined)")
    for ax, (name, gradient) in zip(axes[1:], maps.items()):
        pushed = np.abs(gradient[gradient != 0])
        # The colours span the 95th percentile of the pushes, so that one pixel pushed far harder than the rest
        # (the Lovasz hinge on a section without salt) does not hide them; it shows in the darkest colour.
        limit = float(np.percentile(pushed, 95)) if pushed.size else 1.0
        image = ax.imshow(np.clip(gradient, -limit, limit), cmap=GRADIENT_CMAP,
                          norm=TwoSlopeNorm(0.0, -limit, limit), interpolation="nearest")
        _draw_outline(ax, truth, "black")
        ax.set_title(f"{name}\n{np.count_nonzero(gradient)} of {gradient.size} pixels pushed", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, shrink=0.8, format="%.0e")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_prediction_snapshots(images: Sequence[np.ndarray] | np.ndarray, masks: Sequence[np.ndarray] | np.ndarray,
                              snapshots: Mapping[int, np.ndarray]) -> Figure:
    """Rows: sections; columns: the section with its truth, then the predicted salt probability epoch by epoch.

    snapshots maps an epoch (0: before training) to the (N, H, W) probabilities after it, as
    helpers.callbacks.PredictionSnapshots keeps them; the truth is outlined on every panel.
    """
    epochs = sorted(snapshots)
    if not epochs:
        raise ValueError("no snapshots to draw: train with PredictionSnapshots first")
    _check_lengths(len(images), masks=masks, **{f"epoch {epoch}": snapshots[epoch] for epoch in epochs})
    fig = Figure(figsize=(PANEL_SIZE * 0.8 * (1 + len(epochs)) + 0.8, PANEL_SIZE * 0.8 * len(images)),
                 layout="constrained")
    axes = np.asarray(fig.subplots(len(images), 1 + len(epochs), squeeze=False))
    image = None
    for row, (section, mask) in enumerate(zip(images, masks)):
        show_section(axes[row, 0], section, mask, "section and truth" if row == 0 else "")
        for column, epoch in enumerate(epochs, start=1):
            ax = axes[row, column]
            image = ax.imshow(_as_2d(snapshots[epoch][row], "snapshot"), cmap=PROBABILITY_CMAP, vmin=0.0, vmax=1.0,
                              interpolation="nearest")
            _draw_outline(ax, _as_2d(mask, "mask"), MASK_COLOUR)
            ax.set_title(("before training" if epoch == 0 else f"after epoch {epoch}") if row == 0 else "",
                         fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(image, ax=axes[:, 1:].ravel().tolist(), shrink=0.8, label="salt probability")
    return fig


def plot_step_curves(curves: Mapping[str, Sequence[float] | np.ndarray], title: str, ylabel: str,
                     steps_per_epoch: int | None = None, points: Mapping[str, Sequence[float]] | None = None) -> Figure:
    """Quantities per optimizer step (a learning rate, a moving average), epoch boundaries dotted.

    points are drawn as small dots (e.g. each batch's own statistic, which the curves average).
    """
    if not curves:
        raise ValueError("plot_step_curves needs at least one curve")
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax = fig.subplots()
    for label, values in (points or {}).items():
        ax.plot(np.arange(1, len(values) + 1), values, ".", markersize=3, color="lightgrey", label=label)
    longest = 0
    for label, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, linewidth=1.8, label=label)
        longest = max(longest, len(values))
    if steps_per_epoch:
        for boundary in range(steps_per_epoch, longest, steps_per_epoch):
            ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=0.8)
    ax.set(title=title, xlabel="optimizer step" + (" (dotted: epoch boundaries)" if steps_per_epoch else ""),
           ylabel=ylabel)
    ax.legend(fontsize=8)
    return fig
