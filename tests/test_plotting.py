"""Figures: each plotting function draws what it promises and saves as PNG (Agg backend, no display)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from helpers.plotting import (
    best_epoch_of,
    plot_coverage_and_depth,
    plot_coverage_classes,
    plot_distributions,
    plot_learning_curves,
    plot_prediction_panels,
    plot_rle_order,
    plot_scores_by_class,
    plot_sections,
    plot_threshold_sweep,
    plot_unet_diagram,
    save_figure,
    show_section,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def disc_masks(n: int, size: int = 101) -> np.ndarray:
    """n masks: the first empty, the others discs of growing radius."""
    rows, cols = np.mgrid[:size, :size]
    radii = np.linspace(0, size / 3, n)
    return np.stack([((rows - size / 2) ** 2 + (cols - size / 2) ** 2 < r**2) for r in radii]).astype(np.float32)


def history(n_epochs: int = 6) -> list[dict[str, float]]:
    """A made-up history whose validation loss is lowest at epoch 4 and validation score highest at epoch 5."""
    val_losses = [0.9, 0.6, 0.45, 0.4, 0.42, 0.5][:n_epochs]
    val_scores = [0.1, 0.3, 0.5, 0.6, 0.7, 0.65][:n_epochs]
    return [
        {"epoch": i + 1, "loss": 1 / (i + 1), "val_loss": v, "val_score": score, "learning_rate": 1e-3 / 10 ** (i // 4)}
        for i, (v, score) in enumerate(zip(val_losses, val_scores))
    ]


def test_save_figure_writes_a_png_and_creates_the_folder(tmp_path):
    figure = Figure()
    figure.subplots().plot([0, 1])
    path = save_figure(figure, "line", tmp_path / "new" / "folder")
    assert path == tmp_path / "new" / "folder" / "line.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_save_figure_rejects_names_with_folders(tmp_path):
    with pytest.raises(ValueError, match="plain file name"):
        save_figure(Figure(), "../escape", tmp_path)


def test_show_section_draws_the_image_and_an_outline_only_where_there_is_salt():
    figure = Figure()
    with_salt, without_salt = figure.subplots(1, 2)
    masks = disc_masks(2)
    show_section(with_salt, np.full((101, 101), 0.5), masks[1], title="salt")
    show_section(without_salt, np.full((101, 101), 0.5), masks[0])
    assert with_salt.get_title() == "salt" and len(with_salt.images) == 1
    assert len(with_salt.collections) == 1  # the contour
    assert len(without_salt.collections) == 0


def test_show_section_rejects_a_batch():
    with pytest.raises(ValueError, match="image must be a 2-D"):
        show_section(Figure().subplots(), np.zeros((2, 101, 101)))


def test_plot_sections_lays_out_a_grid_and_blanks_the_spare_panels():
    masks = disc_masks(5)
    figure = plot_sections(np.random.default_rng(0).random((5, 101, 101)), masks, [str(i) for i in range(5)], ncols=3)
    visible = [ax for ax in figure.axes if ax.axison]
    assert len(figure.axes) == 6 and len(visible) == 5
    assert [ax.get_title() for ax in visible] == ["0", "1", "2", "3", "4"]


def test_plot_sections_checks_lengths():
    with pytest.raises(ValueError, match="titles"):
        plot_sections(np.zeros((2, 101, 101)), None, ["only one"])


def test_learning_curves_mark_the_best_score_or_else_the_lowest_validation_loss():
    assert best_epoch_of(history()) == 5
    without_score = [{k: v for k, v in row.items() if k != "val_score"} for row in history()]
    assert any("best epoch 4" in text.get_text() for text in plot_learning_curves(without_score).axes[0].texts)


def test_learning_curves_have_three_panels_and_mark_the_best_epoch(tmp_path):
    figure = plot_learning_curves(history())
    loss_ax, score_ax, lr_ax = figure.axes
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert {"training loss", "validation loss"} <= set(labels)
    assert "validation competition score" in [line.get_label() for line in score_ax.get_lines()]
    # Log scales keep a large first validation loss from flattening the rest.
    assert lr_ax.get_yscale() == "log" and loss_ax.get_yscale() == "log"
    vertical = [line for line in loss_ax.get_lines() if list(line.get_xdata()) == [5, 5]]
    assert vertical, "the best epoch (5, highest validation score) should be marked by a vertical line"
    assert any("best epoch 5" in text.get_text() for text in loss_ax.texts)
    assert save_figure(figure, "learning_curves", tmp_path).exists()


def test_learning_curves_accept_an_explicit_best_epoch():
    figure = plot_learning_curves(history(), best_epoch=2)
    assert any("best epoch 2" in text.get_text() for text in figure.axes[0].texts)


def test_prediction_panels_have_four_columns_and_a_colour_bar_per_row():
    masks = disc_masks(3)
    probabilities = np.clip(masks + 0.2, 0, 1)
    figure = plot_prediction_panels(np.full((3, 101, 101), 0.5), masks, probabilities, 0.5, ["a", "b", "c"])
    image_axes = [ax for ax in figure.axes if ax.images]
    assert len(image_axes) == 12
    assert len(figure.axes) - len(image_axes) == 3  # one colour bar per row
    assert image_axes[0].get_title().startswith("a\nsection")


def test_prediction_panels_without_truth_have_three_columns():
    masks = disc_masks(2)
    figure = plot_prediction_panels(np.full((2, 101, 101), 0.5), None, masks * 0.9, 0.5)
    image_axes = [ax for ax in figure.axes if ax.images]
    assert len(image_axes) == 6
    assert "predicted outline" in image_axes[0].get_title()
    assert len(image_axes[3].collections) == 1  # the second image's predicted disc is outlined


def test_rle_order_numbers_pixels_down_the_columns():
    figure = plot_rle_order(np.array([[0, 1], [1, 0], [0, 0]]))
    numbers = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in figure.axes[0].texts}
    assert numbers[(0, 0)] == "1" and numbers[(1, 0)] == "2" and numbers[(0, 1)] == "4"
    with pytest.raises(ValueError, match="tiny"):
        plot_rle_order(np.zeros((101, 101)))


def test_coverage_and_depth_histograms_split_by_salt():
    coverage = np.array([0, 0, 0.2, 0.5, 1.0])
    figure = plot_coverage_and_depth(coverage, np.array([10, 20, 30, 40, 50.0]))
    assert len(figure.axes) == 3
    assert "3 images with salt" in figure.axes[1].get_title()
    no_depths = plot_coverage_and_depth(coverage, np.full(5, np.nan))
    assert any("no depths" in text.get_text() for text in no_depths.axes[2].texts)


def test_coverage_classes_plot_shares_per_part():
    figure = plot_coverage_classes({"train": np.array([0, 0, 1, 10]), "validation": np.array([0, 10])})
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    assert len(heights) == 22
    assert heights[0] == pytest.approx(0.5) and heights[11] == pytest.approx(0.5)


def test_threshold_sweep_marks_the_best_threshold_by_default():
    figure = plot_threshold_sweep(np.array([0.3, 0.5, 0.7]), np.array([0.2, 0.8, 0.5]))
    assert "0.50" in figure.axes[0].get_legend().get_texts()[0].get_text()


def test_scores_by_class_bars_are_class_means():
    figure = plot_scores_by_class(np.array([0, 0, 3]), np.array([1.0, 0.0, 0.4]))
    assert [patch.get_height() for patch in figure.axes[0].patches] == pytest.approx([0.5, 0.4])


def test_unet_diagram_draws_a_box_per_block_and_a_skip_per_level():
    shapes = [("image", (32, 32, 1)), ("enc1_relu2", (32, 32, 4)), ("enc1_pool", (16, 16, 4)),
              ("enc2_relu2", (16, 16, 8)), ("bottleneck_relu2", (8, 8, 16)), ("dec2_up", (16, 16, 8)),
              ("dec2_relu2", (16, 16, 8)), ("dec1_relu2", (32, 32, 4)), ("output", (32, 32, 1))]
    ax = plot_unet_diagram(shapes).axes[0]
    texts = [text.get_text() for text in ax.texts]
    assert {"enc1", "enc2", "bottleneck", "dec2", "dec1", "8x8x16"} <= set(texts)
    assert len(ax.patches) == 5 + 4 + 2  # boxes, arrows between blocks, skips
    with pytest.raises(ValueError, match="no conv block"):
        plot_unet_diagram([("image", (32, 32, 1))])


def test_unet_diagram_from_a_real_model():
    from helpers.model import build_unet, level_shapes

    ax = plot_unet_diagram(level_shapes(build_unet(input_size=32, base_filters=4, depth=2))).axes[0]
    assert "8x8x16" in [text.get_text() for text in ax.texts]


def test_distributions_draw_one_outline_per_data_set():
    figure = plot_distributions({"built-in": np.array([0.1, 0.2]), "real": np.array([0.5, 0.9, 0.9])}, "t", "x")
    ax = figure.axes[0]
    assert len(ax.patches) == 2 and ax.get_title() == "t"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["built-in (2)", "real (3)"]
    with pytest.raises(ValueError, match="at least one"):
        plot_distributions({}, "t", "x")


def test_stage_scores_run_one_stage_after_the_other_and_star_each_best():
    from helpers.plotting import plot_stage_scores

    first = [{"val_score": v} for v in (0.5, 0.7, 0.6)]
    second = [{"val_score": v} for v in (0.72, 0.75)]
    ax = plot_stage_scores({"1: bce": first, "2: lovasz": second}).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["2: lovasz"].get_xdata()) == [4, 5]  # numbered on after the first stage
    assert list(lines["1: bce: best 0.700 (epoch 2)"].get_xdata()) == [2]
    assert list(lines["2: lovasz: best 0.750 (epoch 2)"].get_xdata()) == [5]
    assert [list(line.get_xdata()) for line in ax.get_lines() if line.get_linestyle() == ":"] == [[3.5, 3.5]]
    (start,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]  # from the first stage's best
    assert (list(start.get_xdata()), list(start.get_ydata())) == ([2, 4], [0.7, 0.72])
    marked = plot_stage_scores({"1: bce": first}, no_salt_score=0.39).axes[0]
    (no_salt,) = [line for line in marked.get_lines() if line.get_linestyle() == "-."]
    assert list(no_salt.get_ydata()) == [0.39, 0.39] and "no salt" in no_salt.get_label()
    unscored = plot_stage_scores({"1": [{"val_loss": 0.3}]}).axes[0]
    assert [line.get_label() for line in unscored.get_lines()] == ["1"]  # nothing to star
