"""The environment TensorFlow reads once, when it loads, and where the course sets it.

TensorFlow reads these variables when it is first imported, so they are set before that in every way the
course runs: the course runner (for its notebook kernels), the kernel `make` installs for Jupyter (its
kernelspec), `python -m helpers.training`, and the benchmarks' child processes. Importing helpers sets nothing.

TensorFlow also writes start-up lines (absl, oneDNN, CUDA) straight to the process's stderr before it reads
any setting; the course's kernel keeps such low-level output out of the notebooks (it goes to the terminal
that started Jupyter or papermill), while Python's own warnings and errors still show in the notebook.

    python -m helpers.tensorflow_env --install-kernel   # the course's Jupyter kernel, in this environment
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


def apply_course_environment(for_children_only: bool = False) -> None:
    """Set the course's settings in this process (a value already set wins); it must come before TensorFlow loads.

    for_children_only: the settings are for processes started from here (notebook kernels), so TensorFlow
    having loaded in this one already does not matter.
    """
    if "tensorflow" in sys.modules and not for_children_only:
        raise RuntimeError("apply_course_environment() came after TensorFlow was imported, which has read its "
                           "settings already; call it first")
    for name, value in COURSE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def kernel_args() -> list[str]:
    """`ipykernel install` arguments that put the course's settings into the Jupyter kernel's spec."""
    return [part for name, value in COURSE_ENVIRONMENT.items() for part in ("--env", name, value)]


KERNEL_NAME, KERNEL_DISPLAY_NAME = "python3", "Python 3 (U-Net course)"
KERNEL_CONFIG = ("# Written by helpers.tensorflow_env: C-level output (TensorFlow's start-up lines) stays out of\n"
                 "# the notebooks and goes to the terminal that started the kernel.\n"
                 "c.IPKernelApp.capture_fd_output = False\n")


def kernel_manager_config() -> Any:
    """The traitlets config under which the course runner starts its kernels: encrypted where it can be.

    ipykernel 7.3 and later warns at every start of a kernel whose messages travel over plain TCP. The course's
    kernelspec declares CurveZMQ support, so asking the kernel manager for "auto" encryption silences the
    warning honestly; where pyzmq lacks CurveZMQ or jupyter_client predates the option, nothing is asked.
    """
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if zmq.has("curve") and "transport_encryption" in KernelManager.class_trait_names():
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config()


def install_kernel(prefix: str | Path = sys.prefix) -> Path:
    """Install the course's Jupyter kernel into prefix, with its TensorFlow settings; the kernelspec's folder."""
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", KERNEL_NAME,
                    "--display-name", KERNEL_DISPLAY_NAME, *kernel_args()], check=True, stdout=subprocess.DEVNULL)
    config_dir = Path(prefix) / "etc" / "ipython"  # IPython reads its kernels' config here, for this environment
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    return Path(prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME


if __name__ == "__main__":
    if sys.argv[1:] != ["--install-kernel"]:
        sys.exit("usage: python -m helpers.tensorflow_env --install-kernel")
    print(f"installed the course's kernel in {install_kernel()}")
