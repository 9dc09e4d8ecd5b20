"""helpers.training_figures: gradient maps side by side, and predictions on fixed sections epoch by epoch."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.training_figures import plot_gradient_maps, plot_prediction_snapshots


def image_axes(fig):
    """The panels that show an image (colour bars excluded)."""
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def test_gradient_maps_draw_the_prediction_then_one_panel_per_loss_with_its_count():
    truth = np.zeros((12, 12), np.float32)
    truth[4:8, 4:8] = 1
    probabilities = np.full_like(truth, 0.3)
    only_one = np.zeros_like(truth)
    only_one[0, 0] = 0.5
    fig = plot_gradient_maps(truth, probabilities, {"BCE": probabilities - truth, "Lovasz": only_one}, title="toy")
    panels = image_axes(fig)
    assert len(panels) == 3
    assert "1 of 144 pixels pushed" in panels[2].get_title() and "144 of 144" in panels[1].get_title()
    assert len([ax for ax in fig.axes if ax.get_label() == "<colorbar>"]) == 2
    assert fig._suptitle.get_text() == "toy"
    zero = plot_gradient_maps(truth, probabilities, {"nothing": np.zeros_like(truth)})  # no division by zero
    assert "0 of 144" in image_axes(zero)[1].get_title()


def test_gradient_maps_refuse_a_map_of_another_shape():
    with pytest.raises(ValueError, match="shape"):
        plot_gradient_maps(np.zeros((4, 4)), np.zeros((4, 4)), {"BCE": np.zeros((5, 4))})


def test_prediction_snapshots_have_a_row_per_section_and_a_column_per_epoch():
    rng = np.random.default_rng(0)
    images, masks = rng.random((3, 10, 10)), (rng.random((3, 10, 10)) > 0.5).astype(np.float32)
    snapshots = {epoch: rng.random((3, 10, 10)) for epoch in (4, 0, 2)}
    fig = plot_prediction_snapshots(images, masks, snapshots)
    panels = image_axes(fig)
    assert len(panels) == 3 * 4
    titles = [ax.get_title() for ax in panels[:4]]
    assert titles == ["section and truth", "before training", "after epoch 2", "after epoch 4"]
    assert all(ax.get_title() == "" for ax in panels[4:])
    assert len([ax for ax in fig.axes if ax.get_label() == "<colorbar>"]) == 1


def test_prediction_snapshots_check_what_they_are_given():
    with pytest.raises(ValueError, match="no snapshots"):
        plot_prediction_snapshots(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), {})
    with pytest.raises(ValueError, match="epoch 1"):
        plot_prediction_snapshots(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), {1: np.zeros((3, 4, 4))})


def test_step_curves_draw_each_curve_the_points_and_the_epoch_boundaries():
    from helpers.training_figures import plot_step_curves

    figure = plot_step_curves({"momentum 0.9": [0.0, 0.5, 0.9], "momentum 0.99": [0.0, 0.1, 0.2]}, "t", "mean",
                              steps_per_epoch=1, points={"batch means": [1.0, 1.0, 1.0]})
    ax = figure.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:3] == ["batch means", "momentum 0.9", "momentum 0.99"]
    assert [list(line.get_xdata()) for line in ax.get_lines()[3:]] == [[1.5, 1.5], [2.5, 2.5]]
    with pytest.raises(ValueError, match="at least one curve"):
        plot_step_curves({}, "t", "y")
