"""The Colab/Kaggle badges and setup cell: the same in every notebook, installing only on those services."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from helpers import hosted

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_the_badges_and_the_setup_cell(notebook: Path):
    cells = nbformat.read(notebook, as_version=4).cells
    hint = f"run: python -m helpers.hosted notebooks/{notebook.name}"
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {notebook.name[:2]}"), notebook.name
    assert cells[1].source == hosted.badges_source(notebook.name, [p.name for p in NOTEBOOKS]), hint
    assert cells[2].cell_type == "code" and cells[2].source == hosted.setup_source(), hint
    assert not hosted.apply(notebook, check=True), hint


def test_badges_open_this_notebook_from_the_repository_named_once():
    url = hosted.repository_url()
    assert url.startswith("https://github.com/") and url in (ROOT / "pyproject.toml").read_text()
    badges = hosted.badges_source("04_training.ipynb", [p.name for p in NOTEBOOKS])
    path = url.removeprefix("https://github.com/")
    assert f"https://colab.research.google.com/github/{path}/blob/main/notebooks/04_training.ipynb" in badges
    assert f"https://kaggle.com/kernels/welcome?src={url}/blob/main/notebooks/04_training.ipynb" in badges
    assert "[notebook 03](03_unet_model.ipynb)" in badges and "[notebook 05](05_evaluation.ipynb)" in badges
    assert f"git+{url}" in hosted.setup_source()


def run_setup_cell(monkeypatch, *, colab: bool = False, kaggle: bool = False, installed: bool = False) -> list:
    """Execute the setup cell's code as a kernel would; the pip commands it would have run."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: calls.append((command, kwargs)))
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    if kaggle:
        monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    if not installed:
        monkeypatch.setitem(sys.modules, "helpers.course", None)  # what a fresh Colab session sees: ImportError
    exec(compile(hosted.setup_source(), "<setup cell>", "exec"), {"__name__": "__main__"})  # noqa: S102
    return calls


@pytest.mark.parametrize("service", ["colab", "kaggle"])
def test_on_a_hosted_service_the_setup_cell_installs_the_course(monkeypatch, service):
    calls = run_setup_cell(monkeypatch, **{service: True})
    assert len(calls) == 2 and all(kwargs.get("check") for _, kwargs in calls)
    (first, _), (second, _) = calls
    assert first[:4] == [sys.executable, "-m", "pip", "install"] and "--no-deps" in first
    assert f"unet-salt-course @ git+{hosted.repository_url()}" in first
    assert any(r.startswith("tensorflow") for r in second) and any(r.startswith("scikit-image") for r in second)
    assert not {"jupyterlab", "papermill", "nbval"} & {r.split(">")[0].split("=")[0] for r in second}


def test_on_a_hosted_service_with_the_course_installed_the_setup_cell_does_nothing(monkeypatch):
    assert run_setup_cell(monkeypatch, colab=True, installed=True) == []


def test_anywhere_else_the_setup_cell_does_nothing(monkeypatch, capsys):
    assert run_setup_cell(monkeypatch) == []
    assert capsys.readouterr() == ("", "")


def test_the_maintenance_command_is_idempotent_and_keeps_every_other_cell(tmp_path):
    source = ROOT / "notebooks" / "02_data_exploration.ipynb"
    bare = nbformat.read(source, as_version=4)
    bare.cells = [c for c in bare.cells if not {"course-badges", "hosted-setup"} & set(c.metadata.get("tags", []))]
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for other in NOTEBOOKS:
        shutil.copy(other, folder / other.name)
    path = folder / source.name
    nbformat.write(bare, path)

    assert hosted.main([str(path)]) == 0
    once = path.read_text()
    assert hosted.main([str(path)]) == 0 and path.read_text() == once  # a second run changes nothing
    assert hosted.main(["--check", str(path)]) == 0
    cells = json.loads(once)["cells"]
    assert [c["id"] for c in cells[1:3]] == ["course-badges", "hosted-setup"]
    others = [c for c in cells if c["id"] not in ("course-badges", "hosted-setup")]
    assert others == json.loads(nbformat.writes(bare))["cells"]  # the rest untouched, tags included
    assert sum("parameters" in c["metadata"].get("tags", []) for c in cells) == 1
    assert not any(c.get("outputs") for c in cells if c["cell_type"] == "code")
