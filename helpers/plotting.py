"""Figures for the course: seismic sections with salt contours, learning curves, predictions, a U-Net map.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so nothing piles up in
pyplot's global state: show one in a notebook by leaving it as a cell's last expression, and save it
with ``save_figure``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle
from matplotlib.ticker import MaxNLocator

from helpers.run_folder import best_epoch_of

FIGURE_DPI = 100
MASK_COLOUR = "#ffd700"  # gold: visible over both grey and the blue-white-red "seismic" colour map
PANEL_SIZE = 2.6  # inches per image panel


def save_figure(fig: Figure, name: str, folder: str | Path) -> Path:
    """Save fig as folder/name.png (the folder is created) and return the file's path."""
    if not name or Path(name).name != name:
        raise ValueError(f"figure name must be a plain file name without folders, got {name!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name if name.endswith(".png") else f"{name}.png")
    fig.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")
    return path


# ----------------------------------------------------------------------------- seismic sections


def show_section(
    ax: Axes, image: np.ndarray, mask: np.ndarray | None = None, title: str = "", cmap: str = "gray"
) -> None:
    """Draw a seismic section (values in [0, 1]) on ax, with the salt mask's outline over it."""
    image = _as_2d(image, "image")
    ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    if mask is not None:
        _draw_outline(ax, _as_2d(mask, "mask"), MASK_COLOUR)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_sections(
    images: Sequence[np.ndarray] | np.ndarray,
    masks: Sequence[np.ndarray | None] | np.ndarray | None = None,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    cmap: str = "gray",
) -> Figure:
    """A grid of seismic sections, each with its salt outline (masks may be None)."""
    n = len(images)
    if n == 0:
        raise ValueError("plot_sections needs at least one image")
    masks = [None] * n if masks is None else list(masks)
    titles = [""] * n if titles is None else list(titles)
    _check_lengths(n, masks=masks, titles=titles)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(PANEL_SIZE * ncols, PANEL_SIZE * nrows + 0.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, image, mask, title in zip(axes, images, masks, titles):
        show_section(ax, image, mask, title, cmap)
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig


def plot_prediction_panels(
    images: Sequence[np.ndarray] | np.ndarray,
    truths: Sequence[np.ndarray] | np.ndarray | None,
    probabilities: Sequence[np.ndarray] | np.ndarray,
    threshold: float = 0.5,
    titles: Sequence[str] | None = None,
) -> Figure:
    """Per row: section with true outline, true mask, salt probability (colour bar), thresholded prediction.

    Without truths (new images) a row is: section with the predicted outline, probability, prediction.
    """
    n = len(images)
    if n == 0:
        raise ValueError("plot_prediction_panels needs at least one image")
    titles = [""] * n if titles is None else list(titles)
    _check_lengths(n, probabilities=probabilities, titles=titles, **({} if truths is None else {"truths": truths}))
    columns = 3 if truths is None else 4
    fig = Figure(figsize=(PANEL_SIZE * columns + 0.6, PANEL_SIZE * n + 0.2), layout="constrained")
    axes = fig.subplots(n, columns, squeeze=False)
    for row in range(n):
        probability = _as_2d(probabilities[row], "probability")
        prediction = (probability > threshold).astype(np.float32)
        truth = None if truths is None else _as_2d(truths[row], "truth")
        prefix = f"{titles[row]}\n" if titles[row] else ""
        panels = list(axes[row])
        if truth is None:
            show_section(panels.pop(0), images[row], prediction, f"{prefix}section + predicted outline")
        else:
            show_section(panels.pop(0), images[row], truth, f"{prefix}section + true outline")
            _show_mask(panels.pop(0), truth, "true mask (white = salt)")
        shown = panels[0].imshow(probability, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        panels[0].set_title("predicted salt probability", fontsize=9)
        panels[0].set_xticks([])
        panels[0].set_yticks([])
        fig.colorbar(shown, ax=panels[0], fraction=0.046, pad=0.02)
        _show_mask(panels[1], prediction, f"prediction (probability > {threshold:.2f})")
        if truth is not None:
            _draw_outline(panels[1], truth, MASK_COLOUR)
    what = "the predicted salt outline" if truths is None else "the true salt outline"
    fig.suptitle(f"gold line: {what}; white: salt", fontsize=10)
    return fig


def _show_mask(ax: Axes, mask: np.ndarray, title: str) -> None:
    """Draw a 0/1 mask in black and white, without ticks."""
    ax.imshow(mask, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_rle_order(mask: np.ndarray) -> Figure:
    """A small mask with each pixel's 1-based number in the competition's column-major order."""
    mask = _as_2d(mask, "mask")
    height, width = mask.shape
    if height * width > 400:
        raise ValueError(f"plot_rle_order is for tiny masks (at most 400 pixels), got {height}x{width}")
    fig = Figure(figsize=(0.5 * width + 1, 0.5 * height + 0.8), layout="constrained")
    ax = fig.subplots()
    ax.imshow(mask > 0.5, cmap="Oranges", vmin=0, vmax=1.6, interpolation="nearest")
    for row in range(height):
        for col in range(width):
            ax.text(col, row, str(col * height + row + 1), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(width))
    ax.set_yticks(range(height))
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.set_title("pixel numbers run down each column (orange = salt)", fontsize=9)
    return fig


# ----------------------------------------------------------------------------- data statistics


def plot_coverage_and_depth(coverage: np.ndarray, depths: np.ndarray) -> Figure:
    """Histograms of salt coverage (all images, and the salty ones) and of depth with and without salt."""
    coverage = np.asarray(coverage, dtype=float)
    depths = np.asarray(depths, dtype=float)
    _check_lengths(len(coverage), depths=depths)
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    ax_all, ax_salty, ax_depth = fig.subplots(1, 3)
    ax_all.hist(coverage, bins=np.linspace(0, 1, 21), color="tab:blue", edgecolor="white")
    ax_all.set(title=f"salt coverage, all {len(coverage)} images", xlabel="fraction of pixels that are salt",
               ylabel="images")
    salty = coverage[coverage > 0]
    ax_salty.hist(salty, bins=np.linspace(0, 1, 21), color="tab:orange", edgecolor="white")
    ax_salty.set(title=f"coverage of the {len(salty)} images with salt", xlabel="coverage", ylabel="images")
    known = np.isfinite(depths)
    if known.any():
        bins = np.linspace(depths[known].min(), depths[known].max() + 1e-6, 21)
        for has_salt, label, colour in ((False, "no salt", "tab:blue"), (True, "salt", "tab:orange")):
            chosen = known & ((coverage > 0) == has_salt)
            ax_depth.hist(depths[chosen], bins=bins, alpha=0.6, label=f"{label} ({chosen.sum()})", color=colour)
        ax_depth.legend(fontsize=8)
    else:
        ax_depth.text(0.5, 0.5, "no depths in this data set", ha="center", va="center", transform=ax_depth.transAxes)
    ax_depth.set(title="depth of the section", xlabel="depth z (feet)", ylabel="images")
    return fig


def plot_coverage_classes(classes_by_part: dict[str, np.ndarray]) -> Figure:
    """Share of each coverage class (0 = no salt, 1..10 = tenths) in each part, e.g. train and validation."""
    if not classes_by_part:
        raise ValueError("plot_coverage_classes needs at least one part, e.g. {'train': classes}")
    labels = np.arange(11)
    width = 0.8 / len(classes_by_part)
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax = fig.subplots()
    for offset, (part, classes) in enumerate(classes_by_part.items()):
        classes = np.asarray(classes)
        shares = np.bincount(classes, minlength=11)[:11] / max(len(classes), 1)
        ax.bar(labels + (offset - (len(classes_by_part) - 1) / 2) * width, shares, width,
               label=f"{part} ({len(classes)} images)")
    ax.set_xticks(labels)
    ax.set(title="coverage classes: share of images in each part", xlabel="coverage class (ceil(10 x coverage))",
           ylabel="share of the part's images")
    ax.legend(fontsize=8)
    return fig


def plot_distributions(values_by_name: dict[str, np.ndarray], title: str, xlabel: str, bins: int = 20,
                       value_range: tuple[float, float] = (0.0, 1.0)) -> Figure:
    """Overlaid density histograms of one quantity in several data sets (e.g. built-in vs real)."""
    if not values_by_name:
        raise ValueError("plot_distributions needs at least one named array of values")
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    edges = np.linspace(*value_range, bins + 1)
    for name, values in values_by_name.items():
        values = np.asarray(values, dtype=float).ravel()
        ax.hist(values, bins=edges, density=True, histtype="step", linewidth=1.8, label=f"{name} ({values.size})")
    ax.set(title=title, xlabel=xlabel, ylabel="density")
    ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------- training and evaluation


def plot_learning_curves(history: list[dict[str, float]], best_epoch: int | None = None) -> Figure:
    """Loss, validation scores and learning rate per epoch, with the best epoch marked (by val_score if logged)."""
    if best_epoch is None:
        monitor = "val_score" if any(math.isfinite(row.get("val_score", math.nan)) for row in history) else "val_loss"
        best_epoch = best_epoch_of(history, monitor)
    epochs = [int(row.get("epoch", index + 1)) for index, row in enumerate(history)]
    fig = Figure(figsize=(14, 3.8), layout="constrained")
    ax_loss, ax_score, ax_lr = fig.subplots(1, 3)
    panels = (
        (ax_loss, ("loss", "val_loss"), "loss (lower is better)", "loss"),
        (ax_score, ("val_score", "val_iou", "iou"), "scores (higher is better)", "score"),
        (ax_lr, ("learning_rate",), "learning rate", "learning rate"),
    )
    labels = {"loss": "training loss", "val_loss": "validation loss", "val_score": "validation competition score",
              "val_iou": "validation IoU", "iou": "training IoU"}
    for ax, keys, title, ylabel in panels:
        for key in keys:
            values = [row.get(key, math.nan) for row in history]
            if any(math.isfinite(value) for value in values):
                ax.plot(epochs, values, marker="o", markersize=3, label=labels.get(key, key))
        ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
        ax.set(title=title, xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    ax_score.set_ylim(-0.02, 1.02)
    # Log scales: an early validation loss many times the later ones (batch-norm statistics still
    # settling) would flatten every other point, and learning rates fall by factors.
    for ax, keys in ((ax_loss, ("loss", "val_loss")), (ax_lr, ("learning_rate",))):
        values = [row[key] for row in history for key in keys if key in row]
        if values and all(value > 0 for value in values):
            ax.set_yscale("log")
    ax_loss.text(best_epoch, 0.98, f" best epoch {best_epoch}", transform=ax_loss.get_xaxis_transform(),
                 va="top", fontsize=8, color="dimgrey")
    return fig


def plot_stage_scores(stages: dict[str, list[dict[str, float]]], no_salt_score: float | None = None) -> Figure:
    """Validation competition score per epoch through consecutive training stages, each stage's best starred.

    no_salt_score draws the score of predicting no salt anywhere: a model below it has learned nothing useful.
    """
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    offset, previous_best = 0, None
    for index, (label, history) in enumerate(stages.items()):
        scores = [row.get("val_score", math.nan) for row in history]
        epochs = list(range(offset + 1, offset + len(history) + 1))
        if index:
            ax.axvline(offset + 0.5, color="grey", linestyle=":", linewidth=1)
            if previous_best is not None and history:  # a stage starts from the previous stage's best model
                ax.plot([previous_best[0], epochs[0]], [previous_best[1], scores[0]], color="grey", linestyle="--",
                        linewidth=1, label="next stage starts from the best" if index == 1 else None)
        (line,) = ax.plot(epochs, scores, marker="o", markersize=3, label=label)
        previous_best = None
        if any(math.isfinite(score) for score in scores):
            best = int(np.nanargmax(scores))
            ax.plot(epochs[best], scores[best], marker="*", markersize=14, linestyle="none", color=line.get_color(),
                    label=f"{label}: best {scores[best]:.3f} (epoch {best + 1})")
            previous_best = (epochs[best], scores[best])
        offset += len(history)
    if no_salt_score is not None:
        ax.axhline(no_salt_score, color="black", linestyle="-.", linewidth=1,
                   label=f"predicting no salt anywhere ({no_salt_score:.3f})")
    ax.set(title="validation competition score, stage after stage", xlabel="epoch (stages one after the other)",
           ylabel="score")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    return fig


def plot_threshold_sweep(thresholds: np.ndarray, scores: np.ndarray, chosen: float | None = None) -> Figure:
    """Competition score against the probability threshold, with the chosen threshold marked."""
    thresholds, scores = np.asarray(thresholds, dtype=float), np.asarray(scores, dtype=float)
    _check_lengths(len(thresholds), scores=scores)
    chosen = float(thresholds[int(np.argmax(scores))]) if chosen is None else float(chosen)
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(thresholds, scores, marker="o", markersize=3)
    ax.axvline(chosen, color="tab:red", linestyle="--", linewidth=1, label=f"chosen threshold {chosen:.2f}")
    ax.set(title="validation score against the probability threshold", xlabel="threshold on salt probability",
           ylabel="competition score")
    ax.legend(fontsize=8)
    return fig


def plot_scores_by_class(classes: np.ndarray, scores: np.ndarray) -> Figure:
    """Mean per-image score in each coverage class, with the number of images written on each bar."""
    classes, scores = np.asarray(classes), np.asarray(scores, dtype=float)
    _check_lengths(len(classes), scores=scores)
    present = np.unique(classes)
    means = [scores[classes == label].mean() for label in present]
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(present, means, color="tab:green")
    for bar, label in zip(bars, present):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.02, f"n={np.sum(classes == label)}",
                ha="center", fontsize=8)
    ax.set_xticks(np.arange(11))
    ax.set_ylim(0, 1.1)
    ax.set(title="competition score per coverage class", xlabel="coverage class (0 = no salt)",
           ylabel="mean score")
    return fig


# ----------------------------------------------------------------------------- the network


def plot_unet_diagram(shapes: Sequence[tuple[str, tuple[int, ...]]]) -> Figure:
    """A U-shaped drawing of the conv blocks from model.level_shapes, with pooling, up-sampling and skips."""
    blocks = _unet_blocks(shapes)
    rows = max(row for _, row, _ in blocks) + 1
    fig = Figure(figsize=(12, 1.3 * rows + 0.8), layout="constrained")
    ax = fig.subplots()
    positions = {}
    columns = len(blocks)
    for column, (name, level, shape) in enumerate(blocks):
        height, width, channels = shape
        box_height = 0.35 + 0.5 * height / blocks[0][2][0]
        box_width = 0.25 + 0.12 * math.log2(channels)
        x, y = column, -level
        colour = {"enc": "#9ecae1", "bot": "#fdae6b", "dec": "#a1d99b"}[name[:3]]
        ax.add_patch(Rectangle((x - box_width / 2, y - box_height / 2), box_width, box_height, facecolor=colour,
                               edgecolor="black"))
        ax.text(x, y - box_height / 2 - 0.08, f"{height}x{width}x{channels}", ha="center", va="top", fontsize=8)
        ax.text(x, y, name, ha="center", va="center", fontsize=7)
        positions[name] = (x, y, box_width / 2)
    for (name, _, _), (next_name, _, _) in zip(blocks, blocks[1:]):
        going_down = next_name.startswith(("enc", "bot")) and name.startswith("enc")
        colour = "tab:red" if going_down else "tab:green"
        _arrow(ax, positions[name][:2], positions[next_name][:2], colour, "-|>")
    for name, (x, y, half_width) in positions.items():
        partner = "dec" + name[3:]
        if name.startswith("enc") and partner in positions:
            partner_x, partner_y, partner_half_width = positions[partner]
            _arrow(ax, (x + half_width, y), (partner_x - partner_half_width, partner_y), "grey", "-|>", dashed=True)
    ax.set_xlim(-0.8, columns - 0.2)
    ax.set_ylim(-(rows - 1) - 0.9, 0.7)
    ax.set_axis_off()
    ax.set_title("U-Net: blocks labelled height x width x channels; red = 2x2 max-pool, "
                 "green = 2x transposed conv, dashed = skip connection (concatenate)", fontsize=9)
    return fig


def _unet_blocks(shapes: Sequence[tuple[str, tuple[int, ...]]]) -> list[tuple[str, int, tuple[int, int, int]]]:
    """(block name, row, output shape) of each conv block in data-flow order; row 0 is full resolution."""
    blocks: dict[str, tuple[int, tuple[int, int, int]]] = {}
    for layer_name, shape in shapes:
        match = re.fullmatch(r"(enc(\d+)|bottleneck|dec(\d+))_relu\d+", layer_name)
        if match and len(shape) == 3:
            # a block's later activations overwrite its earlier ones: its output is the last one
            blocks[match.group(1)] = (int(match.group(2) or match.group(3) or 0), tuple(int(s) for s in shape))
    if not blocks:
        raise ValueError("no conv block outputs (enc{k}_relu*, bottleneck_relu*, dec{k}_relu*) in the shapes given")
    depth = max(level for level, _ in blocks.values())
    # encoder/decoder level k sits on row k - 1; the bottleneck one row below the deepest encoder
    return [(name, depth if name == "bottleneck" else level - 1, shape) for name, (level, shape) in blocks.items()]


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], colour: str, style: str,
           dashed: bool = False) -> None:
    """Draw an arrow from start to end."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, color=colour, mutation_scale=12,
                                 linestyle="--" if dashed else "-", shrinkA=14, shrinkB=14, linewidth=1.2))


# ----------------------------------------------------------------------------- small checks


def _as_2d(array: np.ndarray, name: str) -> np.ndarray:
    """A (H, W) float array from (H, W) or (H, W, 1)."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) or (H, W, 1) array, got shape {array.shape}")
    return array


def _draw_outline(ax: Axes, mask: np.ndarray, colour: str) -> None:
    """Outline the region mask > 0.5 (nothing is drawn for an empty or full mask)."""
    mask = np.asarray(mask, dtype=np.float32)
    if 0 < mask.sum() < mask.size:
        ax.contour(mask, levels=[0.5], colors=[colour], linewidths=1.2)


def _check_lengths(n: int, **sequences: Sequence) -> None:
    """Raise ValueError naming every sequence whose length is not n."""
    wrong = {name: len(values) for name, values in sequences.items() if len(values) != n}
    if wrong:
        raise ValueError(f"expected {n} items each, got lengths {wrong}")
