"""The book: a static site built from an executed course, every page, image and link checked, and rendered
in headless Chromium with the network blocked.

The executed course is a tiny one (the course runner with a two-level U-Net on 32 x 32 inputs, one epoch,
64 sections), made once for this file; the book is built from it once, as `make book` builds it from
`make course`'s build/notebooks.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# What tests/test_notebooks.py runs with, smaller still: each notebook in seconds on a CPU.
TINY_COURSE = {"EPOCHS": 1, "FINETUNE_EPOCHS": 1, "N_IMAGES": 64, "BATCH_SIZE": 16, "IMG_SIZE": 32,
               "SIZING": "resize", "BASE_FILTERS": 4, "DEPTH": 2, "N_SHOW": 2, "N_RANDOM_CHECKS": 2,
               "LEARN_STEPS": 5, "SEEDS": 2, "QUESTIONS": "skips"}
COURSE_TIMEOUT_S = 900
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def load_builder():
    """book/build_book.py as a module (the book's tooling is not part of the helpers package)."""
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "book" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_book", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def executed_course(synthetic_data_dir, tmp_path_factory) -> Path:
    """A tiny `make course` run on the small built-in set; its folder of executed notebooks."""
    out = tmp_path_factory.mktemp("course")
    command = [sys.executable, "-m", "helpers.course", "--output-dir", str(out), "--data-dir", str(synthetic_data_dir)]
    for name, value in TINY_COURSE.items():
        command += ["-p", name, str(value)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    # Output to a file, not a pipe: the Jupyter kernels inherit it (see tests/test_nbval.py).
    with tempfile.TemporaryFile("w+") as log:
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=COURSE_TIMEOUT_S)
        log.seek(0)
        assert result.returncode == 0, f"the tiny course failed:\n{log.read()[-4000:]}"
    return out / "notebooks"


@pytest.fixture(scope="module")
def book(executed_course, tmp_path_factory) -> Path:
    """The site built by book/build_book.py (what make book runs) from the tiny course."""
    out = tmp_path_factory.mktemp("book") / "book"
    result = subprocess.run([sys.executable, str(ROOT / "book" / "build_book.py"), "--notebooks",
                             str(executed_course), "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all resolve" in result.stdout
    return out


def page_parser(page: Path):
    parser = load_builder()._PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_every_page_image_and_link_of_the_book_resolves(book, executed_course):
    check = load_builder().check_site(book)
    print(f"\nbook check: {check.summary()}")
    assert check.problems == []  # local assets and internal links (anchors included) resolve; no network loads
    pages = {p.relative_to(book).as_posix() for p in book.rglob("*.html") if "_static" not in p.parts}
    assert {"index.html", "references.html", "run.html"} <= pages
    assert {f"notebooks/{Path(name).stem}.html" for name in NOTEBOOKS} <= pages
    assert check.images >= len(NOTEBOOKS) and check.links > 10 * len(pages)

    landing = page_parser(book / "index.html")
    for name in NOTEBOOKS:  # the notebook table and the navigation link every notebook's page
        assert f"notebooks/{Path(name).stem}.html" in landing.links, name
    for name in NOTEBOOKS:
        page = page_parser(book / "notebooks" / f"{Path(name).stem}.html")
        figures = [url for tag, url in page.loads if tag == "img" and "_images/" in url]
        assert figures, f"{name}: its page shows no figure"
        assert f"../_sources/notebooks/{name}" in page.links  # the executed notebook to download
        assert (book / "_sources" / "notebooks" / name).read_bytes() == (executed_course / name).read_bytes()
    training = page_parser(book / "notebooks" / "04_training.html")
    if any("open-in-colab" in url for _, url in training.loads):  # notebooks opened by helpers.hosted
        assert "03_unet_model.html" in training.links and "05_evaluation.html" in training.links
    text = (book / "notebooks" / "04_training.html").read_text()
    assert "I0000" not in text and "absl::InitializeLog" not in text  # TensorFlow's start-up log left out
    assert "Training the U-Net" in text


def test_the_builder_asks_for_make_course_when_notebooks_are_missing(tmp_path, capsys):
    assert load_builder().main(["--notebooks", str(tmp_path), "--out", str(tmp_path / "book")]) == 1
    assert "run `make course` first" in capsys.readouterr().err and not (tmp_path / "book").exists()


# ----------------------------------------------------------------------------- in a browser


def browser() -> str | None:
    """A Chromium or Chrome executable ($BOOK_BROWSER first), or None."""
    for name in (os.environ.get("BOOK_BROWSER", ""), *BROWSER_NAMES):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium on a page of the book, with every host name unresolvable (no network)."""
    found = browser()
    command = [found, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000",
               *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


def screenshot(page: Path, out: Path, profile: Path, height: int) -> np.ndarray:
    """The page as Chromium draws it, 1280 pixels wide; RGB pixels."""
    from PIL import Image

    result = chromium(page, profile, f"--window-size=1280,{height}", f"--screenshot={out}")
    assert out.is_file(), f"no screenshot of {page.name}: {result.stderr[-2000:]}"
    if os.environ.get("BOOK_SCREENSHOT_DIR"):  # to look at them
        shutil.copy(out, Path(os.environ["BOOK_SCREENSHOT_DIR"]) / out.name)
    with Image.open(out) as image:
        return np.asarray(image.convert("RGB"))


def coloured_pixels(pixels: np.ndarray) -> int:
    """Pixels with a clear hue (figures, badges, highlighted code), not greys."""
    spread = pixels.max(axis=2).astype(int) - pixels.min(axis=2).astype(int)
    return int((spread > 60).sum())


def test_the_book_renders_in_a_browser_without_network(book, tmp_path):
    if browser() is None:
        pytest.skip("no headless browser: install Debian's chromium (apt-get install chromium; .ci/run does)")
    profile = tmp_path / "profile"
    landing, training = book / "index.html", book / "notebooks" / "04_training.html"

    dom = chromium(landing, profile, "--dump-dom").stdout
    assert "U-Net for salt segmentation" in dom and "What you learn" in dom
    assert "fontawesome-i2svg-complete" in dom  # the theme's scripts ran (icons drawn), from local files
    assert 'data-theme="light"' in dom or 'data-theme="dark"' in dom
    for name in NOTEBOOKS:
        assert f'href="notebooks/{Path(name).stem}.html"' in dom, name
    pixels = screenshot(landing, tmp_path / "landing.png", profile, height=1000)
    assert pixels.shape == (1000, 1280, 3) and pixels.std() > 20  # not a blank page
    assert coloured_pixels(pixels[200:600]) > 2000  # the figure of synthetic sections with their salt outlines

    dom = chromium(training, profile, "--dump-dom").stdout
    assert "04 · Training the U-Net" in dom and "fontawesome-i2svg-complete" in dom
    assert 'class="cell_output' in dom and "_images/" in dom  # outputs and figures of the executed notebook
    # Tall enough for the title, the badges, the setup cell, the parameters and the first figure (section 1).
    pixels = screenshot(training, tmp_path / "notebook_04.png", profile, height=4400)
    assert pixels.shape == (4400, 1280, 3) and pixels.std() > 20
    assert coloured_pixels(pixels[:1200]) > 1000  # highlighted code, the badges
    assert coloured_pixels(pixels[2400:]) > 1000  # more code, and the sections with their salt outlines
