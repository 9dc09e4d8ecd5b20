"""`pytest --nbval-lax` over the notebooks whose default parameters run in seconds (01 and 03).

The notebooks are committed without outputs, so nbval executes every cell (a failing assert fails it) but has
no stored output to compare with; tests/test_notebook_01.py compares the `# NBVAL_CHECK_OUTPUT` cells with
expected text. Notebooks 02 and 04-07 load or train on a data set with their defaults, so they run through
papermill with small parameters in tests/test_notebooks.py instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST_NOTEBOOKS = ["notebooks/01_transposed_convolution.ipynb", "notebooks/03_unet_model.ipynb"]


def test_fast_notebooks_pass_nbval_lax():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", *FAST_NOTEBOOKS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert " passed" in completed.stdout
