"""The figure of a comparison of training variants: each variant's score difference to the baseline, with its interval.

Like helpers.plotting, it returns a matplotlib Figure built without pyplot: leave it as a cell's last expression
to show it, save it with helpers.plotting.save_figure.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from helpers.comparison import Difference

RESOLVED_COLOUR = "tab:blue"
UNRESOLVED_COLOUR = "grey"  # an interval that contains 0: the sign of the difference is not settled


def plot_differences(differences: dict[str, Difference], baseline_mean: float, no_salt_score: float | None,
                     title: str = "") -> Figure:
    """One row per variant, top to bottom in the dict's order: its difference to the baseline and its interval.

    The dashed line marks an empty mask on every section, so a variant near it learned nothing beyond predicting
    no salt; the solid line at 0 is the baseline itself. No dashed line where no_salt_score is None (a subset of
    the sections, say, where predicting no salt is no yardstick: it scores 1 on every empty section, 0 elsewhere).
    """
    if not differences:
        raise ValueError("plot_differences needs at least one variant in differences")
    confidences = {result.confidence for result in differences.values()}
    if len(confidences) != 1:
        raise ValueError(f"all differences must share one confidence level to share an axis, got {sorted(confidences)}")

    # Long row names take room from the axis: widen the figure instead.
    longest = max(len(name) for name in differences)
    fig = Figure(figsize=(7.5 + 0.07 * max(0, longest - 30), 1.8 + 0.5 * len(differences)), layout="constrained")
    ax = fig.subplots()
    for row, result in enumerate(differences.values()):
        colour = RESOLVED_COLOUR if result.resolved else UNRESOLVED_COLOUR
        errors = [[result.difference - result.low], [result.high - result.difference]]
        ax.errorbar([result.difference], [row], xerr=errors, fmt="o", color=colour, capsize=4)
        ax.annotate(f"{result.difference:+.3f} [{result.low:+.3f}, {result.high:+.3f}]", (result.difference, row),
                    xytext=(0, 7), textcoords="offset points", ha="center", fontsize=8, color=colour,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0})
    ax.axvline(0.0, color="tab:gray", linewidth=1, label="no difference")
    if no_salt_score is not None:
        ax.axvline(no_salt_score - baseline_mean, color="black", linestyle="--", linewidth=1,
                   label=f"predicting no salt anywhere (score {no_salt_score:.3f})")

    ax.set_yticks(range(len(differences)), list(differences))
    # Rows read top to bottom in the order given, with room above each for its label.
    ax.set_ylim(len(differences) - 0.5, -0.7)
    ax.set_xlabel(f"difference in validation score to the baseline ({confidences.pop() * 100:g} % interval)")
    # Room either side for the interval labels, which are centred on their dots.
    ax.margins(x=0.12)
    ax.grid(axis="x", alpha=0.3)
    # Below the axis, the legend never hides a row.
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
