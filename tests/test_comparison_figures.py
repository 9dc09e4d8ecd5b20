"""helpers.comparison_figures: one row per variant, the zero line and the no-salt line."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.comparison import Difference
from helpers.comparison_figures import RESOLVED_COLOUR, UNRESOLVED_COLOUR, plot_differences


def difference(value: float, low: float, high: float, confidence: float = 0.95) -> Difference:
    return Difference(variant_mean=0.7 + value, baseline_mean=0.7, difference=value, low=low, high=high, seeds=3,
                      sections=400, confidence=confidence)


def variants() -> dict[str, Difference]:
    return {"flips": difference(0.042, 0.020, 0.065), "lovasz": difference(0.004, -0.010, 0.018),
            "no batch norm": difference(-0.031, -0.050, -0.012)}


def test_one_row_per_variant_in_order_with_its_interval_text() -> None:
    fig = plot_differences(variants(), baseline_mean=0.7, no_salt_score=0.39, title="ablations")
    (ax,) = fig.axes
    assert [label.get_text() for label in ax.get_yticklabels()] == ["flips", "lovasz", "no batch norm"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # the first variant is on top
    texts = [text.get_text() for text in ax.texts]
    assert texts == ["+0.042 [+0.020, +0.065]", "+0.004 [-0.010, +0.018]", "-0.031 [-0.050, -0.012]"]
    assert ax.get_title() == "ablations"
    assert ax.get_xlabel() == "difference in validation score to the baseline (95 % interval)"


def test_resolved_rows_have_their_own_colour_and_unresolved_are_grey() -> None:
    fig = plot_differences(variants(), baseline_mean=0.7, no_salt_score=0.39)
    colours = [text.get_color() for text in fig.axes[0].texts]
    assert colours == [RESOLVED_COLOUR, UNRESOLVED_COLOUR, RESOLVED_COLOUR]


def test_the_zero_line_and_the_no_salt_line_are_drawn() -> None:
    fig = plot_differences(variants(), baseline_mean=0.7, no_salt_score=0.39)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    zero = lines["no difference"]
    no_salt = lines["predicting no salt anywhere (score 0.390)"]
    np.testing.assert_allclose(zero.get_xdata(), [0, 0])
    np.testing.assert_allclose(no_salt.get_xdata(), [-0.31, -0.31])
    assert no_salt.get_linestyle() == "--" and no_salt.get_color() == "black"
    assert zero.get_linestyle() == "-"
    assert ax.get_xlim()[0] < -0.31  # the no-salt line is in view
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["no difference", "predicting no salt anywhere (score 0.390)"]


def test_no_no_salt_line_for_a_subset_of_sections() -> None:
    fig = plot_differences(variants(), baseline_mean=0.9, no_salt_score=None)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines if line.get_linestyle() == "--"] == []
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["no difference"]


def test_long_row_names_widen_the_figure() -> None:
    short = plot_differences(variants(), baseline_mean=0.7, no_salt_score=0.39)
    long = plot_differences({f"{name}: sections with salt (364)": result for name, result in variants().items()},
                            baseline_mean=0.7, no_salt_score=0.39)
    assert long.get_figwidth() > short.get_figwidth() == 7.5


def test_the_axis_names_another_confidence() -> None:
    fig = plot_differences({"a": difference(0.01, 0.0, 0.02, confidence=0.9)}, baseline_mean=0.7, no_salt_score=0.4)
    assert fig.axes[0].get_xlabel().endswith("(90 % interval)")


def test_refuses_no_variants_and_mixed_confidence() -> None:
    with pytest.raises(ValueError, match="at least one variant"):
        plot_differences({}, baseline_mean=0.7, no_salt_score=0.39)
    with pytest.raises(ValueError, match="one confidence level"):
        plot_differences({"a": difference(0.01, 0, 0.02), "b": difference(0.01, 0, 0.02, confidence=0.9)},
                         baseline_mean=0.7, no_salt_score=0.39)
