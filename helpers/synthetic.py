"""A built-in, physically motivated stand-in for the TGS salt data, so the course runs with no download.

Each section is a small convolutional seismic model: layered sediments (a random impedance log,
folded, dipping and faulted), a salt body with a smooth irregular outline (dome, diapir, sheet,
flank, ...), sediments dragged up against the salt, a reflectivity series convolved vertically with
a Ricker wavelet, band-limited noise and grey levels like the real images (docs/synthetic_data.md).
``write_synthetic_dataset`` writes Kaggle's folder layout, so every reader of the real data reads
this too; ``builtin_data_dir`` generates it once into a cache. This module gathers the public names
and the command line; the work is done in

    helpers.synthetic_physics    wavelet, random fields, layers, folds and faults, salt bodies
    helpers.synthetic_sections   one section drawn like the real data; its random stream and id
    helpers.synthetic_writer     Kaggle's layout written by worker processes, with its marker file
    helpers.synthetic_staging    atomic publication: staging folder, lock file, rename
    helpers.synthetic_cache      the built-in set in the course's cache folder

Command line: ``python -m helpers.synthetic OUT_DIR [--n-train N] [--n-test N] [--seed S] [--quiet]``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from helpers.synthetic_cache import CACHE_ENV, builtin_data_dir, cache_root
from helpers.synthetic_sections import GENERATOR_VERSION, SyntheticSection, generate_sample, sample_rng, synthetic_ids
from helpers.synthetic_writer import DEFAULT_N_TEST, DEFAULT_N_TRAIN, MARKER_NAME, write_synthetic_dataset

__all__ = [
    "CACHE_ENV",
    "DEFAULT_N_TEST",
    "DEFAULT_N_TRAIN",
    "GENERATOR_VERSION",
    "MARKER_NAME",
    "SyntheticSection",
    "builtin_data_dir",
    "cache_root",
    "generate_sample",
    "main",
    "sample_rng",
    "synthetic_ids",
    "write_synthetic_dataset",
]


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m helpers.synthetic OUT_DIR [--n-train N] [--n-test N] [--seed S]."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.synthetic", description="Write a synthetic salt data set in Kaggle's TGS layout."
    )
    parser.add_argument("out_dir", type=Path, help="new or empty folder to write to")
    parser.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN, help="labelled sections (default 4000)")
    parser.add_argument("--n-test", type=int, default=DEFAULT_N_TEST, help="unlabelled test sections (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    # A plain SIGTERM ends Python without running its clean-ups; as an exception, they remove the staging folder.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) if in_main_thread else None
    try:
        out = write_synthetic_dataset(args.out_dir, args.n_train, args.n_test, args.seed, progress=not args.quiet)
    except (ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: nothing was written to {args.out_dir}", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    print(out)
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    """Signal handler: raise SystemExit (128 + signal number, as a shell reports it)."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
