"""The two cells every notebook opens with: "Open in Colab / Kaggle" badges and a setup cell for those services.

    python -m helpers.hosted notebooks/02_data_exploration.ipynb ...   # add or refresh the two cells
    python -m helpers.hosted --check notebooks/*.ipynb                # exit 1 if a notebook's cells are stale

The repository's address lives in one place, pyproject.toml's ``[project.urls] Repository``; the badges
and the setup cell are generated from it and from the templates below, so they are the same in every
notebook (the badges differ only in the notebook they open). Run the command again after changing the
address or a template: it replaces the two cells in place (it finds them by their tags) and leaves every
other cell as it is.

The setup cell must run before ``helpers`` can be imported (on Colab and Kaggle the course's package is not
installed yet), so it is a few self-contained lines. On those services it installs the package from the
repository, without its Jupyter tools (the services have their own), then the libraries it needs; anywhere
else it does nothing.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = PROJECT_ROOT / "pyproject.toml"
BRANCH = "main"
NOTEBOOK_FOLDER = "notebooks"
BADGES_TAG = "course-badges"
SETUP_TAG = "hosted-setup"
# Installed on the desktop for running and testing the course; the hosted services bring their own Jupyter.
NOT_NEEDED_WHEN_HOSTED = {"jupyterlab", "papermill", "nbval"}

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
KAGGLE_BADGE = "https://kaggle.com/static/images/open-in-kaggle.svg"

BADGES_TEMPLATE = """\
[![Open in Colab]({colab_badge})]({colab_url}) [![Open in Kaggle]({kaggle_badge})]({kaggle_url})

{navigation}"""

SETUP_TEMPLATE = """\
# On Colab or Kaggle: install the course's package (helpers) and what it needs. Anywhere else: nothing.
import os
import sys

if "google.colab" in sys.modules or "KAGGLE_KERNEL_RUN_TYPE" in os.environ:
    try:
        import helpers.course  # noqa: F401  (installed earlier in this session)
    except ImportError:
        import importlib
        import subprocess

        course = "unet-salt-course @ git+{repository}"
        needs = [{requirements}]
        pip = [sys.executable, "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--no-deps", course], check=True)
        subprocess.run([*pip, *needs], check=True)
        importlib.invalidate_caches()"""


def project_metadata(pyproject: Path = PYPROJECT) -> dict:
    """The [project] table of pyproject.toml."""
    return tomllib.loads(pyproject.read_text())["project"]


def repository_url(pyproject: Path = PYPROJECT) -> str:
    """The repository's address, from pyproject.toml's [project.urls] Repository (no trailing slash)."""
    return project_metadata(pyproject)["urls"]["Repository"].rstrip("/")


def hosted_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The package's dependencies that the setup cell installs on Colab and Kaggle."""
    def name(requirement: str) -> str:
        return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()

    return [r for r in project_metadata(pyproject)["dependencies"] if name(r) not in NOT_NEEDED_WHEN_HOSTED]


def setup_source(pyproject: Path = PYPROJECT) -> str:
    """The setup cell's code: the same in every notebook."""
    lines, line = [], ""
    for quoted in (f'"{r}"' for r in hosted_requirements(pyproject)):
        if line and len(line) + len(quoted) > 80:
            lines.append(line + ",")
            line = ""
        line = f"{line}, {quoted}" if line else quoted
    requirements = ("\n" + " " * 17).join([*lines, line])  # aligned under the first, inside "needs = ["
    return SETUP_TEMPLATE.format(repository=repository_url(pyproject), requirements=requirements)


def github_blob_url(notebook_name: str, pyproject: Path = PYPROJECT) -> str:
    """The notebook's page on GitHub."""
    return f"{repository_url(pyproject)}/blob/{BRANCH}/{NOTEBOOK_FOLDER}/{notebook_name}"


def colab_url(notebook_name: str, pyproject: Path = PYPROJECT) -> str:
    """Opens the notebook from GitHub in Colab."""
    path = repository_url(pyproject).removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/{NOTEBOOK_FOLDER}/{notebook_name}"


def kaggle_url(notebook_name: str, pyproject: Path = PYPROJECT) -> str:
    """Opens the notebook from GitHub in a new Kaggle notebook."""
    return f"https://kaggle.com/kernels/welcome?src={github_blob_url(notebook_name, pyproject)}"


def course_notebooks(folder: Path) -> list[str]:
    """The course's notebook names (NN_name.ipynb) in a folder, in order."""
    return sorted(p.name for p in folder.glob("[0-9][0-9]_*.ipynb"))


def navigation(notebook_name: str, siblings: Sequence[str]) -> str:
    """Links to the previous and the next notebook of the course (by file name, so they work everywhere)."""
    names = list(siblings)
    if notebook_name not in names:
        return ""
    index = names.index(notebook_name)
    parts = []
    if index > 0:
        parts.append(f"← previous: [notebook {names[index - 1][:2]}]({names[index - 1]})")
    if index + 1 < len(names):
        parts.append(f"next: [notebook {names[index + 1][:2]}]({names[index + 1]}) →")
    return " · ".join(parts)


def badges_source(notebook_name: str, siblings: Sequence[str], pyproject: Path = PYPROJECT) -> str:
    """The badge cell's Markdown for one notebook."""
    return BADGES_TEMPLATE.format(colab_badge=COLAB_BADGE, colab_url=colab_url(notebook_name, pyproject),
                                  kaggle_badge=KAGGLE_BADGE, kaggle_url=kaggle_url(notebook_name, pyproject),
                                  navigation=navigation(notebook_name, siblings)).rstrip()


def _tagged(cells: list, tag: str) -> list[int]:
    return [i for i, cell in enumerate(cells) if tag in cell.get("metadata", {}).get("tags", [])]


def with_hosted_cells(notebook, notebook_name: str, siblings: Sequence[str], pyproject: Path = PYPROJECT):
    """A copy of the notebook with the badge and setup cells right after its title cell (replaced if present)."""
    import nbformat

    notebook = copy.deepcopy(notebook)
    badges = nbformat.v4.new_markdown_cell(badges_source(notebook_name, siblings, pyproject))
    badges.id, badges.metadata = BADGES_TAG, {"tags": [BADGES_TAG]}
    setup = nbformat.v4.new_code_cell(setup_source(pyproject))
    setup.id, setup.metadata = SETUP_TAG, {"tags": [SETUP_TAG]}
    cells = [cell for i, cell in enumerate(notebook.cells)
             if i not in set(_tagged(notebook.cells, BADGES_TAG) + _tagged(notebook.cells, SETUP_TAG))]
    title = next((i for i, cell in enumerate(cells) if cell.cell_type == "markdown"), -1)
    notebook.cells = cells[:title + 1] + [badges, setup] + cells[title + 1:]
    return notebook


def apply(path: Path, pyproject: Path = PYPROJECT, check: bool = False) -> bool:
    """Add or refresh the two cells in one notebook file; True when it changed (or, with check, would change)."""
    import nbformat

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    updated = with_hosted_cells(notebook, path.name, course_notebooks(path.parent), pyproject)
    if updated == notebook:
        return False
    if not check:
        nbformat.write(updated, path)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: add or refresh (or --check) the badge and setup cells of the notebooks named."""
    parser = argparse.ArgumentParser(prog="python -m helpers.hosted", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is stale")
    args = parser.parse_args(argv)
    stale = []
    for path in args.notebooks:
        changed = apply(path, check=args.check)
        if changed:
            stale.append(path)
        print(f"{path}: {('stale' if args.check else 'updated') if changed else 'up to date'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
