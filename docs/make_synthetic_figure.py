"""Render the README figure of the built-in synthetic data: sections with salt outlines, and statistics
compared with the real TGS data.

    python docs/make_synthetic_figure.py                 # -> docs/figures/synthetic_sections.png
    python docs/make_synthetic_figure.py --with-real     # also build/figures/real_vs_synthetic.png

The committed figure shows only synthetic sections; the real data enters it as summary statistics
(histograms), never as pictures. The --with-real figure puts real sections beside synthetic ones
for local viewing: it goes to build/, which git ignores, and must never be committed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from helpers.synthetic import SyntheticSection, generate_sample, sample_rng  # noqa: E402

FIGURE = PROJECT_ROOT / "docs" / "figures" / "synthetic_sections.png"
LOCAL_FIGURE = PROJECT_ROOT / "build" / "figures" / "real_vs_synthetic.png"
DEFAULT_REAL_DATA = PROJECT_ROOT.parent / "shared" / "data" / "tgs-salt"
# Sections of the built-in set (seed 0, training split) shown: folded layers without salt, a dome
# with dragged layers, a flank and a fault, a top of salt, a tongue, a diapir, all salt, and finely
# layered sediments against a steep flank.
SHOWN_INDICES = [17, 8, 25, 47, 49, 64, 44, 69]
# Bin edges between 8-bit levels, eight levels a bin, so no bin gets more levels than another.
GREY_BINS = (np.arange(0, 257, 8) - 0.5) / 255.0
COVERAGE_LABELS = ["0"] + [f"{10 * k}-{10 * k + 10}" for k in range(10)] + ["100"]


def main(argv: list[str] | None = None) -> int:
    """Command line: render the README figure, and the local real-vs-synthetic one on request."""
    args = parse_arguments(argv)
    synthetic = [generate_sample(sample_rng(0, "train", index)) for index in range(args.n_stats)]
    real = load_real(args.real_data)
    draw_readme_figure(synthetic, real, FIGURE)
    print(f"wrote {FIGURE} ({FIGURE.stat().st_size // 1024} KB)")
    if args.with_real and real is None:
        print("no real data found: skipped the real-vs-synthetic figure", file=sys.stderr)
    elif args.with_real:
        draw_side_by_side(synthetic, real, LOCAL_FIGURE)
        print(f"wrote {LOCAL_FIGURE} (local only, git ignores build/)")
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The script's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-data", type=Path, default=None, help="real TGS folder (default: $SALT_DATA_DIR)")
    parser.add_argument("--n-stats", type=int, default=1000, help="synthetic sections for the statistics (>= 70)")
    local = LOCAL_FIGURE.relative_to(PROJECT_ROOT)
    parser.add_argument("--with-real", action="store_true", help=f"also write {local} (never commit it)")
    return parser.parse_args(argv)


def load_real(folder: Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Real images and masks (N, 101, 101) from the given or default folder, or None when absent."""
    folder = folder or Path(os.environ.get("SALT_DATA_DIR") or DEFAULT_REAL_DATA)
    if not (folder / "train" / "images").is_dir():
        return None
    from helpers.data import load_train

    dataset = load_train(folder, progress=False)
    return dataset.images, dataset.masks


def draw_section(axis: plt.Axes, image: np.ndarray, mask: np.ndarray) -> None:
    """One section in grey with its salt outline and coverage as title."""
    axis.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    if 0 < mask.mean() < 1:
        axis.contour(mask, levels=[0.5], colors="#ffcc00", linewidths=1.2)
    axis.set_title(coverage_title(float(mask.mean())), fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])


def coverage_title(coverage: float) -> str:
    """'no salt', 'salt <1%', 'salt 37%' or 'all salt'."""
    if coverage == 0:
        return "no salt"
    if coverage == 1:
        return "all salt"
    return "salt <1%" if coverage < 0.005 else f"salt {100 * coverage:.0f}%"


def coverage_shares(masks: np.ndarray) -> np.ndarray:
    """Share of sections that are empty, in each 10 % band of salt, and entirely salt."""
    coverage = masks.reshape(len(masks), -1).mean(axis=1)
    partial = coverage[(coverage > 0) & (coverage < 1)]
    bands = np.histogram(partial, bins=np.linspace(0, 1, 11))[0]
    counts = np.concatenate([[np.sum(coverage == 0)], bands, [np.sum(coverage == 1)]])
    return counts / len(coverage)


def vertical_spectrum(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (cycles/px) and mean power spectrum along depth, normalised to sum 1."""
    detrended = images - images.mean(axis=1, keepdims=True)
    power = (np.abs(np.fft.rfft(detrended, axis=1)) ** 2).mean(axis=(0, 2))
    return np.fft.rfftfreq(images.shape[1])[1:], power[1:] / power[1:].sum()


def draw_statistics(
    axes: list[plt.Axes], synthetic: tuple[np.ndarray, np.ndarray], real: tuple[np.ndarray, np.ndarray] | None
) -> None:
    """Grey-level histogram, coverage mix and vertical spectrum: synthetic against real."""
    sets = [("synthetic", synthetic, "#d95f02")]
    if real is not None:
        # About 2 % of the real images are blank (all black): left out so the histogram shows the rest.
        keep = real[0].reshape(len(real[0]), -1).std(axis=1) > 0
        sets.insert(0, ("real TGS (statistics only)", (real[0][keep], real[1]), "#1b9e77"))
    hist_ax, cover_ax, spec_ax = axes
    width = 0.8 / len(sets)
    for k, (name, (images, masks), colour) in enumerate(sets):
        hist_ax.hist(images.ravel(), bins=GREY_BINS, density=True, histtype="step", color=colour, lw=1.6, label=name)
        shares = coverage_shares(masks)
        offset = (k - (len(sets) - 1) / 2) * width
        cover_ax.bar(np.arange(shares.size) + offset, shares, width, color=colour, label=name)
        freq, power = vertical_spectrum(images)
        spec_ax.plot(freq, power, color=colour, lw=1.6, label=name)
    hist_ax.set(title="grey levels", xlabel="pixel value", ylabel="density")
    cover_ax.set(title="salt coverage of a section", xlabel="salt %", ylabel="share of sections")
    cover_ax.set_xticks(np.arange(len(COVERAGE_LABELS)), COVERAGE_LABELS, rotation=60, fontsize=7)
    spec_ax.set(title="vertical frequency content", xlabel="cycles per pixel (depth)", ylabel="power share")
    spec_ax.set_xlim(0, 0.3)
    hist_ax.legend(fontsize=7, frameon=False, loc="upper left")
    if real is None:
        hist_ax.text(0.02, 0.9, "real data not found", transform=hist_ax.transAxes, fontsize=7)


def draw_readme_figure(
    sections: list[SyntheticSection], real: tuple[np.ndarray, np.ndarray] | None, out: Path
) -> None:
    """Eight synthetic sections with salt outlines, and statistics beside them."""
    fig = plt.figure(figsize=(13.5, 5.4), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[2.1, 1.0])
    left.suptitle("Built-in synthetic seismic sections (101 x 101 px) with their salt outlines", fontsize=11)
    for axis, section in zip(left.subplots(2, 4).ravel(), [sections[index] for index in SHOWN_INDICES]):
        draw_section(axis, section.image, section.mask)
    synthetic = (np.stack([s.image for s in sections]), np.stack([s.mask for s in sections]))
    draw_statistics(list(right.subplots(3, 1)), synthetic, real)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def draw_side_by_side(sections: list[SyntheticSection], real: tuple[np.ndarray, np.ndarray], out: Path) -> None:
    """Real sections (top rows) above synthetic ones (bottom rows), for looking at locally only."""
    rng = np.random.default_rng(1)
    chosen = rng.choice(len(real[0]), 16, replace=False)
    fig, axes = plt.subplots(4, 8, figsize=(16, 8.6), layout="constrained")
    fig.suptitle("top two rows: real TGS sections   |   bottom two rows: synthetic (local figure, do not commit)")
    for axis, index in zip(axes[:2].ravel(), chosen):
        draw_section(axis, real[0][index], real[1][index])
    for axis, section in zip(axes[2:].ravel(), sections[:16]):
        draw_section(axis, section.image, section.mask)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
