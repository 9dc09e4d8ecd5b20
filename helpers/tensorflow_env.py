"""The environment TensorFlow reads once, when it loads, and where the course sets it.

TensorFlow reads these variables when it is first imported, so they are set before that in every way the
course runs: the course runner (for its notebook kernels), the kernel `make` installs for Jupyter (its
kernelspec), `python -m helpers.training`, and the benchmarks' child processes. Importing helpers sets nothing.

    python -m helpers.tensorflow_env --kernel-args   # the `--env NAME VALUE` arguments for `ipykernel install`
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

COURSE_ENVIRONMENT = {
    # oneDNN's CPU kernels, which TensorFlow leaves off on CPUs without AVX-512 extensions; the measured
    # speed-up is in benchmarks/README.md.
    "TF_ENABLE_ONEDNN_OPTS": "1",
    # No C++ start-up lines (CPU features, oneDNN notices) in notebooks and logs; errors still show.
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def course_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """base (default: this process's environment) with the course's settings where base does not set them."""
    return {**COURSE_ENVIRONMENT, **(os.environ if base is None else base)}


def apply_course_environment() -> None:
    """Set the course's settings in this process (a value already set wins); it must come before TensorFlow loads."""
    if "tensorflow" in sys.modules:
        raise RuntimeError("apply_course_environment() came after TensorFlow was imported, which has read its "
                           "settings already; call it first")
    for name, value in COURSE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def set_for_child_processes() -> None:
    """Set the course's settings for the processes this one starts (a value already set wins).

    Unlike apply_course_environment it does not mind a TensorFlow loaded here: a notebook kernel or a training
    subprocess reads the settings when it loads its own (the course runner inside pytest, say).
    """
    for name, value in COURSE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def kernel_args() -> list[str]:
    """`ipykernel install` arguments that put the course's settings into the Jupyter kernel's spec."""
    return [part for name, value in COURSE_ENVIRONMENT.items() for part in ("--env", name, value)]


if __name__ == "__main__":
    if sys.argv[1:] != ["--kernel-args"]:
        sys.exit("usage: python -m helpers.tensorflow_env --kernel-args")
    print(" ".join(kernel_args()))
