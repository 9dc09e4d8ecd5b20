"""The TensorFlow settings the course applies before TensorFlow loads, in every way it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers.tensorflow_env import COURSE_ENVIRONMENT, course_environment, kernel_args


def test_the_course_settings_fill_in_what_the_environment_leaves_unset():
    merged = course_environment({"TF_ENABLE_ONEDNN_OPTS": "0", "HOME": "/x"})
    assert merged["TF_ENABLE_ONEDNN_OPTS"] == "0"  # the user's own choice wins
    assert merged["TF_CPP_MIN_LOG_LEVEL"] == COURSE_ENVIRONMENT["TF_CPP_MIN_LOG_LEVEL"] and merged["HOME"] == "/x"
    assert kernel_args()[:3] == ["--env", "TF_ENABLE_ONEDNN_OPTS", "1"]


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in COURSE_ENVIRONMENT}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_importing_helpers_sets_nothing_and_applying_after_tensorflow_is_refused():
    code = ("import json, os, sys, helpers, helpers.course, helpers.tensorflow_env as t\n"
            "before = {k: os.environ.get(k) for k in t.COURSE_ENVIRONMENT}\n"
            "t.apply_course_environment(); after = {k: os.environ.get(k) for k in t.COURSE_ENVIRONMENT}\n"
            "import tensorflow\n"
            "try:\n    t.apply_course_environment(); refused = False\nexcept RuntimeError:\n    refused = True\n"
            "print(json.dumps([before, after, refused]))")
    completed = run_python(code)
    assert completed.returncode == 0, completed.stderr[-2000:]
    before, after, refused = json.loads(completed.stdout.splitlines()[-1])
    assert set(before.values()) == {None} and after == COURSE_ENVIRONMENT and refused


@pytest.mark.slow
def test_the_training_command_line_applies_the_settings_and_reports_a_mistake_in_one_line(tmp_path):
    code = ("import os, sys, helpers.training as t\n"
            f"code = t.cli(['--data-dir', '/no/such/folder', '--run-dir', {str(tmp_path / 'run')!r}])\n"
            "print(code, os.environ.get('TF_ENABLE_ONEDNN_OPTS'), os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    completed = run_python(code)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split()[-3:] == ["2", "1", "2"]
    # TensorFlow 2.21 prints its start-up lines before it reads TF_CPP_MIN_LOG_LEVEL; the error is the last line.
    assert completed.stderr.splitlines()[-1].startswith("error: the data folder /no/such/folder does not exist")
    assert "Traceback" not in completed.stderr and not (tmp_path / "run").exists()


def test_the_course_kernel_carries_the_settings_and_keeps_low_level_output_out(tmp_path):
    from helpers.tensorflow_env import install_kernel

    kernel_dir = install_kernel(tmp_path)
    spec = json.loads((kernel_dir / "kernel.json").read_text())
    assert spec["env"] == COURSE_ENVIRONMENT and spec["argv"][0] == sys.executable
    config = (tmp_path / "etc" / "ipython" / "ipython_kernel_config.py").read_text()
    assert "c.IPKernelApp.capture_fd_output = False" in config


def test_settings_for_child_processes_are_set_even_after_tensorflow_loaded_here():
    # The course runner inside a test session: this process's TensorFlow is loaded, the kernels it starts are not.
    code = ("import json, os, tensorflow, helpers.tensorflow_env as t\n"
            "os.environ['TF_ENABLE_ONEDNN_OPTS'] = '0'\n"
            "t.apply_course_environment(for_children_only=True)\n"
            "print(json.dumps({k: os.environ.get(k) for k in t.COURSE_ENVIRONMENT}))")
    completed = run_python(code)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert json.loads(completed.stdout.splitlines()[-1]) == {**COURSE_ENVIRONMENT, "TF_ENABLE_ONEDNN_OPTS": "0"}


def test_the_kernel_manager_asks_for_encryption_only_where_pyzmq_can_give_it(monkeypatch):
    import zmq

    from helpers.tensorflow_env import kernel_manager_config

    monkeypatch.setattr(zmq, "has", lambda capability: capability == "curve")
    assert kernel_manager_config()["KernelManager"]["transport_encryption"] == "auto"
    monkeypatch.setattr(zmq, "has", lambda capability: False)
    assert "KernelManager" not in kernel_manager_config()  # "auto" without CurveZMQ would refuse to start
