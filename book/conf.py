"""Sphinx configuration of the course's book (built by book/build_book.py, i.e. `make book`).

The pages are the notebooks as `make course` executed them: MyST-NB renders their stored outputs and
executes nothing. The theme (sphinx-book-theme) ships its stylesheets, scripts and fonts in the pip package,
and no extension that loads anything from the network is used (no MathJax: the notebooks have no maths),
so the site builds and reads offline.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

project = "U-Net for salt segmentation: a hands-on course"
author = "the course's authors"
copyright = "the course's authors; the TGS data belongs to TGS"  # noqa: A001  (Sphinx's name)
release = _project["version"]

extensions = ["myst_nb"]
nb_execution_mode = "off"  # the notebooks come executed by `make course`
nb_merge_streams = True  # one block per cell for what it printed
myst_enable_extensions = []  # no dollar maths: it would pull MathJax from a CDN
myst_heading_anchors = 3
exclude_patterns = ["**.ipynb_checkpoints", ".doctrees"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_title = "U-Net salt course"
html_copy_source = True  # the download button offers each executed notebook
html_sourcelink_suffix = ""
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": _project["urls"]["Repository"],
    "use_repository_button": True,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
