"""The physics of a synthetic seismic section: the building blocks of a small convolutional model.

A Ricker wavelet and a vertical convolution, smooth random fields, reflectivity from impedance, a
random layered impedance log, layers folded, dipping and faulted in relative geological time, and
salt bodies (top, base, flank, dome, diapir, sheet) as roughened signed-distance functions with a
mask of an exact coverage. ``helpers.synthetic_sections`` combines them into one section; the
physics is described in docs/synthetic_data.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import fft as scipy_fft
from scipy.fft import next_fast_len
from scipy.signal import lfilter


def ricker_wavelet(peak_frequency: float, half_length: int) -> np.ndarray:
    """Zero-phase Ricker wavelet sampled at 1 px, peak 1 at the centre, length 2 * half_length + 1."""
    if not 0.0 < peak_frequency <= 0.5:
        raise ValueError(f"peak_frequency must be in (0, 0.5] cycles per pixel, got {peak_frequency}")
    if half_length < 1:
        raise ValueError(f"half_length must be at least 1 pixel, got {half_length}")
    arg = (np.pi * peak_frequency * np.arange(-half_length, half_length + 1)) ** 2
    return ((1.0 - 2.0 * arg) * np.exp(-arg)).astype(np.float64)


def convolve_vertical(sections: np.ndarray, wavelet: np.ndarray) -> np.ndarray:
    """Convolve every column of (..., rows, cols) sections with an odd-length, centred wavelet; same shape."""
    if sections.ndim < 2 or wavelet.ndim != 1 or wavelet.size % 2 == 0:
        raise ValueError(
            "need sections of shape (..., rows, cols) and an odd-length 1-D wavelet, "
            f"got {sections.shape} and {wavelet.shape}"
        )
    rows, half = sections.shape[-2], wavelet.size // 2
    n = next_fast_len(rows + wavelet.size - 1, real=True)
    spectrum = scipy_fft.rfft(sections, n, axis=-2) * scipy_fft.rfft(wavelet, n)[:, None]
    return scipy_fft.irfft(spectrum, n, axis=-2)[..., half : half + rows, :]


def smooth_random_field(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: float | tuple[float, ...]
) -> np.ndarray:
    """Gaussian-smoothed white noise (sigma in px per axis) with zero mean and unit standard deviation."""
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=float), (len(shape),))
    # Drawn directly in the Fourier domain, which costs the same for any sigma. The margin keeps
    # the FFT's periodic wrap-around from tying opposite edges together.
    padded = tuple(next_fast_len(int(n + min(np.ceil(3 * s), 2 * n)), real=True) for n, s in zip(shape, sigmas))
    spectrum, variance = _random_spectrum(rng, _gaussian_gains(padded, sigmas))
    field = scipy_fft.irfftn(spectrum, s=padded)[tuple(slice(0, n) for n in shape)]
    # Scaled by the expected, not the drawn, deviation: a field as wide as the picture may well
    # come out weaker or stronger than average, as it would in nature.
    field *= np.float32(np.prod(padded) / np.sqrt(variance))
    return field


def _gaussian_gains(padded: tuple[int, ...], sigmas: np.ndarray) -> list[np.ndarray]:
    """Fourier gain of a Gaussian blur along each axis (the last one halved, as rfftn stores it)."""
    last = len(padded) - 1
    return [
        np.exp(-2.0 * (np.pi * s * (np.fft.rfftfreq(n) if axis == last else np.fft.fftfreq(n))) ** 2)
        for axis, (n, s) in enumerate(zip(padded, sigmas))
    ]


def _random_spectrum(rng: np.random.Generator, gains: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Random coefficients shaped by separable gains (drawn only where they pass anything), and N^2 var."""
    passed = [np.flatnonzero(gain > 1e-3) for gain in gains]
    gain = gains[0][passed[0]]
    for axis in range(1, len(gains)):
        gain = np.multiply.outer(gain, gains[axis][passed[axis]])
    # Uniform rather than Gaussian coefficients: cheaper to draw (docs/synthetic_data.md, Cost), and every
    # pixel sums so many of them that the field is Gaussian all the same.
    coefficients = rng.random((*gain.shape, 2), dtype=np.float32)
    coefficients -= 0.5
    coefficients = coefficients.view(np.complex64)[..., 0]
    coefficients *= gain.astype(np.float32)
    # Parseval: a stored coefficient stands for itself and its mirror image (E|c|^2 = gain^2 / 6),
    # except in the zero- and Nyquist-frequency columns, where only its real part counts.
    last = gains[-1].size
    weight = np.where((passed[-1] == 0) | ((passed[-1] == last - 1) & (last % 2 == 1)), 1 / 12, 1 / 3)
    variance = float(np.sum(gain**2 * weight))
    full_shape = tuple(g.size for g in gains)
    if coefficients.shape == full_shape:
        return coefficients, variance
    spectrum = np.zeros(full_shape, dtype=np.complex64)
    spectrum[np.ix_(*passed)] = coefficients
    return spectrum, variance


def reflectivity(log_impedance: np.ndarray) -> np.ndarray:
    """Vertical reflection coefficients of a log-impedance section (row i: contrast between rows i and i+1)."""
    # For small contrasts (I2 - I1) / (I2 + I1) is half the jump in log-impedance.
    contrast = 0.5 * np.diff(log_impedance, axis=0)
    return np.concatenate([contrast, np.zeros_like(contrast[:1])], axis=0)


def impedance_log(rng: np.random.Generator, times: np.ndarray, mean_thickness: float) -> np.ndarray:
    """Log-impedance of a random stack of layers at the given relative geological times (px of depth)."""
    if mean_thickness <= 0:
        raise ValueError(f"mean_thickness must be positive, got {mean_thickness}")
    start, stop = float(times.min()) - 2.0, float(times.max()) + 2.0
    n_layers = int((stop - start) / mean_thickness * 3) + 8
    # Gamma thicknesses: mostly thin beds, a few thick ones, never zero.
    tops = start + np.cumsum(rng.gamma(1.5, mean_thickness / 1.5, n_layers))
    steps = rng.standard_normal(n_layers) * 0.08
    steps[rng.random(n_layers) < 0.08] *= 3.0  # a few bright beds (coal, carbonate, gas sand)
    # Mean-reverting walk, value[k] = 0.55 value[k-1] + step[k]: neighbouring beds are related and
    # the log does not drift away.
    values = np.concatenate([[0.0], lfilter([1.0], [1.0, -0.55], steps)])
    fine = np.arange(start, stop, 0.25)
    fine_log = values[np.searchsorted(tops, fine)]
    # Averaging over one pixel makes a bed boundary fall between pixels instead of on a staircase.
    fine_log = np.convolve(fine_log, np.full(4, 0.25), mode="same")
    return np.interp(times, fine, fine_log)


def fold_and_fault_times(rng: np.random.Generator, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Relative geological time (undeformed depth, px) of each point: dipping, folded, faulted layers."""
    xx, zz = x[None, :].astype(float), z[:, None].astype(float)
    centre = (x[-1] + x[0]) / 2.0
    steep = rng.random() < 0.25
    dip = rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.6) if steep else rng.normal(0.0, 0.2)
    times = zz - dip * (xx - centre)
    lateral = smooth_random_field(rng, (x.size,), rng.uniform(8.0, 30.0)) * rng.uniform(0.0, 7.0)
    wavelength = rng.uniform(40.0, 220.0)
    lateral += rng.uniform(0.0, 8.0) * np.sin(2 * np.pi * xx[0] / wavelength + rng.uniform(0, 2 * np.pi))
    # Folds grow or fade with depth, as when layers were deposited while folding went on.
    growth = 1.0 + rng.uniform(-0.8, 0.8) * (zz - centre) / 100.0
    times -= lateral[None, :] * growth
    for _ in range(rng.choice([0, 1, 2], p=[0.7, 0.22, 0.08])):
        times += _fault_offset(rng, xx, zz)
    # Small-scale warping (differential compaction, slumps, imaging jitter) keeps beds from being too regular.
    jitter = smooth_random_field(rng, times.shape, (rng.uniform(2.0, 5.0), rng.uniform(1.5, 4.0)))
    return times + jitter * rng.uniform(0.0, 1.2)


def _fault_offset(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """Vertical throw of the layers on one side of a slanted fault line through the section."""
    x0 = rng.uniform(10.0, 90.0)
    slant = np.tan(np.radians(rng.uniform(-40.0, 40.0)))
    side = (xx - x0 - slant * (zz - 50.0)) / np.sqrt(1.0 + slant**2)
    throw = rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 14.0)
    return throw / (1.0 + np.exp(-np.clip(side / 0.6, -50, 50)))


def layered_impedance(rng: np.random.Generator, times: np.ndarray, period: float) -> np.ndarray:
    """Sediment log-impedance at each point, from its relative geological time and the wavelet period."""
    mean_thickness = period * rng.uniform(0.15, 0.6)
    return impedance_log(rng, times, mean_thickness)


def _surface_distance(offset: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Approximate signed distance to a curve from a vertical (or horizontal) offset and the curve's slope."""
    return offset / np.sqrt(1.0 + slope**2)


def salt_level_set(rng: np.random.Generator, kind: str, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Signed distance (px, positive inside) to a salt body of the given kind, before roughening."""
    if kind not in SALT_KINDS:
        raise ValueError(f"salt kind must be one of {SALT_KINDS}, got {kind!r}")
    xx, zz = np.meshgrid(x.astype(float), z.astype(float))
    return _SALT_SHAPES[kind](rng, xx, zz)


def _top_of_salt(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """Salt below an undulating top surface."""
    x = xx[0]
    top = 50.0 + rng.normal(0.0, 0.5) * (x - 50.0)
    top += rng.uniform(0.0, 30.0) * -np.exp(-(((x - rng.uniform(-20, 120)) / rng.uniform(15, 60)) ** 2))
    top += smooth_random_field(rng, x.shape, rng.uniform(6.0, 20.0)) * rng.uniform(0.0, 5.0)
    return _surface_distance(zz - top[None, :], np.gradient(top)[None, :])


def _base_of_salt(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """Salt above an undulating base surface (sediments underneath)."""
    return -_top_of_salt(rng, xx, zz)


def _salt_flank(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """Salt on one side of a steep, curved flank crossing the section from top to bottom."""
    z = zz[:, 0]
    lean = np.tan(np.radians(rng.uniform(-35.0, 35.0)))
    edge = 50.0 + lean * (z - 50.0) + rng.uniform(-0.5, 0.5) * (z - 50.0) ** 2 / 100.0
    edge += smooth_random_field(rng, z.shape, rng.uniform(6.0, 20.0)) * rng.uniform(0.0, 4.0)
    side = rng.choice([-1.0, 1.0])
    return side * _surface_distance(xx - edge[:, None], np.gradient(edge)[:, None])


def _salt_dome(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """A broad elliptical dome whose crest may lie inside or outside the section."""
    half_width, half_height = rng.uniform(30.0, 120.0), rng.uniform(40.0, 160.0)
    cx, cz = rng.uniform(-10.0, 110.0), 40.0 + half_height * rng.uniform(0.6, 1.2)
    radius = np.hypot((xx - cx) / half_width, (zz - cz) / half_height)
    return (1.0 - radius) * min(half_width, half_height)


def _salt_diapir(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """A diapir: a leaning stalk rising into a wider bulb with overhanging flanks."""
    bulb_x, bulb_z = rng.uniform(15.0, 85.0), rng.uniform(10.0, 60.0)
    bulb_w, bulb_h = rng.uniform(15.0, 45.0), rng.uniform(10.0, 30.0)
    lean = np.tan(np.radians(rng.uniform(-25.0, 25.0)))
    stalk_half = bulb_w * rng.uniform(0.3, 0.7) + np.clip(zz - bulb_z, 0, None) * rng.uniform(0.0, 0.3)
    stalk_centre = bulb_x + lean * (zz - bulb_z)
    stalk = np.minimum(stalk_half - np.abs(xx - stalk_centre), zz - bulb_z)
    radius = np.hypot((xx - bulb_x) / bulb_w, (zz - bulb_z) / bulb_h)
    bulb = (1.0 - radius) * min(bulb_w, bulb_h)
    return _smooth_max(stalk, bulb, 4.0)


def _salt_sheet(rng: np.random.Generator, xx: np.ndarray, zz: np.ndarray) -> np.ndarray:
    """A sub-horizontal salt sheet or tongue that thins towards a rounded tip."""
    x = xx[0]
    middle = rng.uniform(20.0, 80.0) + rng.normal(0.0, 0.25) * (x - 50.0)
    middle += smooth_random_field(rng, x.shape, rng.uniform(10.0, 25.0)) * rng.uniform(0.0, 5.0)
    tip_x, side = rng.uniform(10.0, 110.0), rng.choice([-1.0, 1.0])
    along = side * (tip_x - x)
    thickness = rng.uniform(8.0, 30.0) * np.clip(along / rng.uniform(20.0, 80.0), 0.0, 1.0) ** 0.5
    slope = np.gradient(middle)[None, :]
    half = 0.5 * thickness[None, :]
    inside_layer = half - np.abs(_surface_distance(zz - middle[None, :], slope))
    return _smooth_min(inside_layer, np.broadcast_to(along[None, :], zz.shape), 6.0)


def _smooth_max(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    """Union of two signed-distance bodies with a rounded join of the given width (px)."""
    return -_smooth_min(-a, -b, width)


def _smooth_min(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    """Intersection of two signed-distance bodies with a rounded corner of the given width (px)."""
    mix = np.clip(0.5 + 0.5 * (b - a) / width, 0.0, 1.0)
    return b * (1.0 - mix) + a * mix - width * mix * (1.0 - mix)


_SALT_SHAPES: dict[str, Callable[[np.random.Generator, np.ndarray, np.ndarray], np.ndarray]] = {
    "top": _top_of_salt,
    "flank": _salt_flank,
    "dome": _salt_dome,
    "diapir": _salt_diapir,
    "sheet": _salt_sheet,
    "base": _base_of_salt,
}
# The kinds of salt body a section can show.
SALT_KINDS = tuple(_SALT_SHAPES)


def roughen(rng: np.random.Generator, level_set: np.ndarray) -> np.ndarray:
    """Add smooth irregularity (a few px, long and short wavelengths) to a salt body's outline."""
    broad = smooth_random_field(rng, level_set.shape, rng.uniform(7.0, 16.0)) * rng.uniform(0.5, 3.0)
    rugose = smooth_random_field(rng, level_set.shape, 1.5) * rng.uniform(0.0, 0.6)
    return level_set + broad + rugose


def salt_body_mask(level_set: np.ndarray, coverage: float) -> tuple[np.ndarray, float]:
    """Mask of the `coverage` fraction of pixels with the largest level set, and the threshold used."""
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"coverage must be in [0, 1], got {coverage}")
    n_salt = int(round(coverage * level_set.size))
    if n_salt == 0:
        return np.zeros(level_set.shape, dtype=np.float32), float("inf")
    if n_salt == level_set.size:
        return np.ones(level_set.shape, dtype=np.float32), float("-inf")
    ordered = np.sort(level_set, axis=None)[::-1]
    threshold = 0.5 * float(ordered[n_salt - 1] + ordered[n_salt])
    return (level_set > threshold).astype(np.float32), threshold
