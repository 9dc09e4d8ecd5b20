"""The project's set-up: conda and pip name the same packages; notebooks are committed clean."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGES = {"python", "pip"}


def _name(requirement: str) -> str:
    """The normalised package name of a requirement such as 'scikit-image>=0.22'."""
    name = re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


# Extras that conda installs too: the tests (which build the book), the book, and the Kaggle download.
CONDA_EXTRAS = ("test", "book", "data")


def pip_packages() -> set[str]:
    """Packages pyproject.toml installs, with the extras conda has too (the project's own name left out)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in CONDA_EXTRAS:
        names |= {_name(r) for r in project["optional-dependencies"][extra]}
    return names - {project["name"]}


def conda_packages() -> set[str]:
    """Packages environment.yml installs from conda-forge."""
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    return {_name(d) for d in environment["dependencies"] if isinstance(d, str)} - NOT_PACKAGES


def test_conda_and_pip_name_the_same_packages():
    assert conda_packages() == pip_packages()


def test_conda_uses_python_311_from_conda_forge():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge"]
    assert "python=3.11" in environment["dependencies"]


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(notebook: Path):
    cells = json.loads(notebook.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells)
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{notebook.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_cells_have_unique_ids(notebook: Path):
    # nbformat 4.5 requires an id on every cell; Jupyter invents missing ones on save, so cells would change id
    # (and links to them break) each time someone opens and saves the notebook.
    cells = json.loads(notebook.read_text())["cells"]
    missing = [i for i, c in enumerate(cells) if not c.get("id")]
    assert not missing, f"{notebook.name}: cells {missing} have no id; give each a unique one"
    ids = [c["id"] for c in cells]
    repeated = sorted({cell_id for cell_id in ids if ids.count(cell_id) > 1})
    assert not repeated, f"{notebook.name}: repeated cell ids {repeated}"


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_has_the_course_skeleton(notebook: Path):
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: needs exactly one cell tagged 'parameters'"
    names = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=", "".join(tagged[0]["source"]), flags=re.M)
    assert names and all(n.isupper() for n in names), f"{notebook.name}: parameters must be ALL_CAPS: {names}"
    # papermill reads each assignment's type and help from its line, and skips a line with a second "="
    unreadable = [line for line in "".join(tagged[0]["source"]).splitlines() if line.count("=") > 1]
    assert not unreadable, f"{notebook.name}: papermill cannot parse {unreadable}; keep '=' out of the comments"
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert markdown.lstrip().startswith(f"# {notebook.name[:2]}"), f"{notebook.name}: title must start '# NN'"
    for heading in ("## Summary", "## Exercises"):
        assert heading in markdown, f"{notebook.name}: missing '{heading}'"
