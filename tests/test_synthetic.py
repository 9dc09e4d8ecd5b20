"""Tests for helpers.synthetic: the public names the course imports, and the command line."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from helpers import synthetic, synthetic_writer

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_the_public_names_are_importable_from_helpers_synthetic() -> None:
    # What notebook 02, docs/make_synthetic_figure.py, helpers.data and the tests' fixtures import from here.
    from helpers.synthetic import (  # noqa: F401
        MARKER_NAME,
        SyntheticSection,
        builtin_data_dir,
        cache_root,
        generate_sample,
        sample_rng,
        write_synthetic_dataset,
    )

    assert set(synthetic.__all__) <= set(dir(synthetic))
    assert MARKER_NAME == "SYNTHETIC.json"


def test_python_dash_m_runs_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "helpers.synthetic", str(tmp_path / "salt"), "--n-train", "2", "--n-test", "1",
               "--quiet"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "salt")
    assert (tmp_path / "salt" / "SYNTHETIC.json").is_file()


def test_command_line_writes_a_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert synthetic.main([str(tmp_path / "cli"), "--n-train", "3", "--n-test", "1", "--seed", "2", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    assert json.loads((tmp_path / "cli" / "SYNTHETIC.json").read_text())["seed"] == 2


def test_command_line_reports_a_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.txt").write_text("")
    assert synthetic.main([str(tmp_path), "--n-train", "3", "--quiet"]) == 2
    assert "refusing" in capsys.readouterr().err


@pytest.mark.parametrize(("signum", "outcome"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_ctrl_c_or_sigterm_of_the_command_line_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], signum: int, outcome: int
) -> None:
    def signalled(items: Iterable, total: int, label: str, enabled: bool) -> Iterator:
        for number, item in enumerate(items):
            if number == 2:
                os.kill(os.getpid(), signum)  # as from the terminal or a job scheduler, mid-way
            yield item

    monkeypatch.setattr(synthetic_writer, "_MIN_PARALLEL", 1)
    monkeypatch.setattr(synthetic_writer, "_progress", signalled)
    argv = [str(tmp_path / "salt"), "--n-train", "8", "--n-test", "1", "--quiet"]

    class Escaped(Exception):
        """The signal reached the test: main did not handle it (and would have left its staging folder)."""

    def escaped(*args: object) -> None:
        raise Escaped(f"signal {signum} was not handled by main")

    # Should main not handle the signal, the test fails instead of the test process being stopped.
    previous = signal.signal(signal.SIGTERM, escaped)
    # Python's own Ctrl-C handler, as in a terminal: a process started in the background by a shell without job
    # control (`make test &` in a script) inherits SIGINT ignored, and the kill below would then do nothing.
    previous_interrupt = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        try:
            code = synthetic.main(argv)  # Ctrl-C: main returns
        except SystemExit as stop:  # SIGTERM: main exits, as the process would
            code = stop.code
        except KeyboardInterrupt as error:
            raise Escaped("KeyboardInterrupt escaped main") from error
        assert code == outcome
        assert signal.getsignal(signal.SIGTERM) is escaped  # main put the previous handler back
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_interrupt)
    if signum == signal.SIGINT:
        assert "interrupted: nothing was written" in capsys.readouterr().err
    assert multiprocessing.active_children() == []  # the worker processes were shut down
    assert list(tmp_path.iterdir()) == []  # and the staging folder removed
