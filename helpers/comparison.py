"""Is a training variant better than the baseline, or is the gain within the noise? A paired bootstrap says.

Both runs are scored per validation section, for the same training seeds and the same fixed split, so the
scores form two (seeds, sections) arrays. The gain is the mean difference over all cells; its interval comes
from resampling seeds and sections with replacement, the same draw for variant and baseline. Reusing the draw
is what makes it paired: the hard and easy sections, and lucky and unlucky seeds, cancel in the difference
instead of widening its interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Resamples per chunk are chosen so that one chunk's count and partial-sum arrays hold about this many numbers
# (16 MB of float64): memory stays small whatever the number of resamples or sections.
CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class Difference:
    """A variant's mean score against the baseline's, with a bootstrap interval for their difference."""

    variant_mean: float
    baseline_mean: float
    difference: float
    low: float
    high: float
    seeds: int
    sections: int
    confidence: float

    @property
    def resolved(self) -> bool:
        """True when the interval excludes 0: the sign of the difference is settled at this confidence."""
        return self.low > 0 or self.high < 0

    def to_json(self, name: str, compared_with: str = "baseline") -> dict[str, str | float | int | bool]:
        """The result as plain Python values, ready for json.dumps; "mean" is the variant's mean score."""
        return {
            "name": name,
            "mean": float(self.variant_mean),
            "difference": float(self.difference),
            "low": float(self.low),
            "high": float(self.high),
            "seeds": int(self.seeds),
            "resolved": bool(self.resolved),
            "compared_with": compared_with,
        }


def paired_bootstrap(variant_scores: np.ndarray, baseline_scores: np.ndarray, n_resamples: int = 10_000,
                     confidence: float = 0.95, seed: int = 0) -> Difference:
    """Mean score difference variant - baseline with a two-level paired bootstrap percentile interval.

    Row s of both (seeds, sections) arrays comes from training seed s, column j from validation section j.
    Each resample draws seeds and sections with replacement, the same draw for both arrays.
    """
    variant = _scores(variant_scores, "variant_scores")
    baseline = _scores(baseline_scores, "baseline_scores")
    if variant.shape != baseline.shape:
        raise ValueError(f"variant_scores and baseline_scores must have the same (seeds, sections) shape, "
                         f"got {variant.shape} and {baseline.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
    if n_resamples < 100:
        raise ValueError(f"n_resamples must be at least 100 for a percentile interval, got {n_resamples!r}")

    n_seeds, n_sections = variant.shape
    differences = variant - baseline
    rng = np.random.default_rng(seed)
    # A resample's mean difference is sum_s,j (times seed s drawn) * (times section j drawn) * D[s, j] / (S * N):
    # multinomial counts give the same statistic as indexing, without building (resamples, S, N) arrays.
    chunk = max(1, CHUNK_CELLS // (n_seeds + 2 * n_sections))
    resampled = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        seed_counts = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=size).astype(np.float64)
        section_counts = rng.multinomial(n_sections, np.full(n_sections, 1 / n_sections), size=size)
        resampled[start:start + size] = ((seed_counts @ differences) * section_counts).sum(1) / (n_seeds * n_sections)

    tail = (1 - confidence) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail])
    variant_mean, baseline_mean = float(variant.mean()), float(baseline.mean())
    return Difference(variant_mean=variant_mean, baseline_mean=baseline_mean, difference=float(differences.mean()),
                      low=float(low), high=float(high), seeds=n_seeds, sections=n_sections,
                      confidence=float(confidence))


def _scores(scores: np.ndarray, name: str) -> np.ndarray:
    """scores as a float64 (seeds, sections) array, or a ValueError naming the argument."""
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (seeds, sections), got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name} needs at least one seed and one section, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has {np.count_nonzero(~np.isfinite(array))} non-finite value(s) (NaN or inf)")
    return array
