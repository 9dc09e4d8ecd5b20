"""Build the course's book, a static HTML site, from the notebooks that `make course` executed.

    python book/build_book.py                                    # build/notebooks -> build/book (make book)
    python book/build_book.py --notebooks DIR --out DIR          # another executed course
    python book/build_book.py --check-only --out build/book      # only check an existing site

Nothing is executed again: the executed copies (with their outputs) are laid out with the landing page
(book/index.md), the references and a page describing the run, and Sphinx with MyST-NB renders them with
sphinx-book-theme, whose assets ship in its pip package. The badges' images are replaced by local copies,
so that the site loads nothing from the network. Then every page is checked: each image, stylesheet, script
and internal link must resolve to a file of the site (and an anchor, when it names one) and nothing may be
loaded from elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

BOOK_DIR = Path(__file__).resolve().parent
ROOT = BOOK_DIR.parent
COURSE_NOTEBOOKS = ROOT / "notebooks"
BADGES_TAG = "course-badges"
LOCAL_BADGES = {
    "https://colab.research.google.com/assets/colab-badge.svg": "../badges/open-in-colab.svg",
    "https://kaggle.com/static/images/open-in-kaggle.svg": "../badges/open-in-kaggle.svg",
}
RUNTIME_LOG = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")
LANDING_FIGURES = [ROOT / "docs" / "figures" / "synthetic_sections.png"]


class BookError(Exception):
    """The book cannot be built from what is there; the message says what to do."""


# ----------------------------------------------------------------------------- the sources


def executed_notebooks(folder: Path) -> list[Path]:
    """The executed copy of every course notebook, in order; raises naming the missing or failed ones."""
    expected = sorted(p.name for p in COURSE_NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise BookError(f"no executed copy of {', '.join(missing)} in {folder}: run `make course` first "
                        "(the book shows the notebooks as that run executed them)")
    failed = []
    for name in expected:
        metadata = json.loads((folder / name).read_text()).get("metadata", {}).get("papermill", {})
        if metadata.get("exception"):
            failed.append(name)
    if failed:
        raise BookError(f"{', '.join(failed)} in {folder} stopped with an error: fix it and run `make course` again")
    return [folder / name for name in expected]


def _badge_cell_local(notebook: dict) -> dict:
    """The badge cell's images pointed at the book's own copies (the links stay)."""
    for cell in notebook.get("cells", []):
        if BADGES_TAG in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for remote, local in LOCAL_BADGES.items():
                source = source.replace(remote, local)
            cell["source"] = source
    return notebook


def _is_runtime_log(line: str) -> bool:
    """A line that TensorFlow's C++ runtime logs while it starts (absl's I0000/W0000/E0000 format)."""
    return bool(RUNTIME_LOG.match(line)) or line.startswith("WARNING: All log messages before absl::")


def _without_runtime_logs(notebook: dict) -> dict:
    """Stderr outputs without TensorFlow's start-up log lines (oneDNN, CUDA probing): noise for a reader."""
    for cell in notebook.get("cells", []):
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
                text = "".join(line for line in text.splitlines(keepends=True) if not _is_runtime_log(line))
                if not text.strip():
                    continue
                output["text"] = text
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    return notebook


def _run_page(notebooks: Sequence[Path]) -> str:
    """A page saying when and with which parameters each notebook was executed."""
    rows = []
    for path in notebooks:
        papermill = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        parameters = papermill.get("parameters", {})
        shown = ", ".join(f"`{name}={value!r}`" for name, value in sorted(parameters.items())
                          if not name.endswith(("_DIR", "_JSON", "_ROOT", "_CSV")))
        duration = papermill.get("duration")
        seconds = f"{duration:.0f} s" if isinstance(duration, (int, float)) else "?"
        finished = (papermill.get("end_time") or "?")[:16].replace("T", " ")
        rows.append(f"| [notebook {path.stem[:2]}](notebooks/{path.name}) | {finished} | {seconds} | "
                    f"{shown or 'its defaults'} |")
    lines = ["# How this run was made", "",
             "The pages of this book are the notebooks as the course runner (`make course`, i.e.",
             "`python -m helpers.course`) executed them, with these parameters (folders left out). Numbers and",
             "figures come from this run: a short run shows a rough model, the real results are in the",
             "repository's README.", "",
             "| notebook | finished (UTC) | took | parameters |", "| --- | --- | --- | --- |", *rows, ""]
    return "\n".join(lines)


def lay_out_sources(notebooks: Sequence[Path], source: Path) -> Path:
    """A fresh Sphinx source folder: the landing page, the pages of the book and the executed notebooks."""
    if source.exists():
        shutil.rmtree(source)
    (source / "notebooks").mkdir(parents=True)
    for page in ("index.md", "references.md"):
        shutil.copy2(BOOK_DIR / page, source / page)
    shutil.copytree(BOOK_DIR / "badges", source / "badges")
    (source / "figures").mkdir()
    for figure in LANDING_FIGURES:
        shutil.copy2(figure, source / "figures" / figure.name)
    (source / "run.md").write_text(_run_page(notebooks))
    for path in notebooks:
        notebook = _without_runtime_logs(_badge_cell_local(json.loads(path.read_text())))
        (source / "notebooks" / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False))
    return source


def build(notebook_dir: Path, out: Path, source: Path | None = None, stream=None) -> Path:
    """Build the site into out (replaced) from the executed notebooks in notebook_dir; out/index.html."""
    stream = sys.stdout if stream is None else stream
    source = source or out.parent / f"{out.name}-src"
    notebooks = executed_notebooks(notebook_dir)
    lay_out_sources(notebooks, source)
    if out.exists():
        shutil.rmtree(out)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(BOOK_DIR), "-d",
               str(source / ".doctrees"), str(source), str(out)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    warnings = [line for line in (result.stderr or "").splitlines() if line.strip()]
    if result.returncode != 0 or not (out / "index.html").is_file():
        raise BookError("Sphinx could not build the book:\n" + "\n".join(warnings[-30:]))
    for path in notebooks:  # the download button offers the executed notebook itself, with the badges' images
        shutil.copy2(path, out / "_sources" / "notebooks" / path.name)
    for line in warnings:
        print(f"sphinx: {line}", file=stream)
    print(f"Built {len(notebooks)} notebook pages in {time.perf_counter() - started:.0f} s: {out / 'index.html'}",
          file=stream)
    return out / "index.html"


# ----------------------------------------------------------------------------- checking the site


class _PageParser(HTMLParser):
    """Collects what a page loads (images, stylesheets, scripts), its links and its anchors."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str]] = []  # (tag, url)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.ids.add(values["name"])
        if tag in ("img", "script", "iframe", "source", "video", "audio") and values.get("src"):
            self.loads.append((tag, values["src"]))
        if tag == "link" and values.get("href"):
            rel = values.get("rel", "").lower()
            if any(kind in rel for kind in ("stylesheet", "icon", "preload", "modulepreload")):
                self.loads.append(("link", values["href"]))
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])


def _is_external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc) or url.startswith("//")


@dataclass
class SiteCheck:
    """What check_site found."""

    pages: int = 0
    images: int = 0
    loads: int = 0  # images, stylesheets and scripts, all local
    links: int = 0  # internal links (and anchors) that resolve
    external_links: int = 0  # links to other sites (not followed)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = "all resolve" if not self.problems else f"{len(self.problems)} problems"
        return (f"{self.pages} pages, {self.images} images, {self.loads} local assets and {self.links} internal "
                f"links checked ({self.external_links} links to other sites not followed): {state}")


def check_site(out: Path) -> SiteCheck:
    """Check every page of the site: local assets and internal links resolve; nothing comes from the network."""
    out = Path(out).resolve()
    # Pages only: the theme also copies template fragments (*.html with Jinja in them) into _static.
    pages = sorted(p for p in out.rglob("*.html") if "_static" not in p.relative_to(out).parts)
    parsed: dict[Path, _PageParser] = {}
    for page in pages:
        parser = _PageParser()
        parser.feed(page.read_text(encoding="utf-8"))
        parsed[page] = parser
    check = SiteCheck(pages=len(pages))

    def target_of(page: Path, url: str) -> tuple[Path, str]:
        parts = urlsplit(url)
        path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if path.is_dir():
            path = path / "index.html"
        return path, unquote(parts.fragment)

    for page, parser in parsed.items():
        name = page.relative_to(out)
        for tag, url in parser.loads:
            if url.startswith("data:"):
                check.loads += 1
                check.images += tag == "img"
                continue
            if _is_external(url):
                check.problems.append(f"{name}: <{tag}> loads {url} from the network")
                continue
            path, _ = target_of(page, url)
            if not path.is_file():
                check.problems.append(f"{name}: <{tag}> {url} does not exist")
                continue
            check.loads += 1
            check.images += tag == "img"
        for url in parser.links:
            if url.startswith(("mailto:", "javascript:")):
                continue
            if _is_external(url):
                check.external_links += 1
                continue
            path, fragment = target_of(page, url)
            if not path.is_file():
                check.problems.append(f"{name}: link {url} leads nowhere")
                continue
            if fragment and path.suffix == ".html":
                ids = parsed[path].ids if path in parsed else set()
                if fragment not in ids:
                    check.problems.append(f"{name}: link {url} names an anchor that {path.name} lacks")
                    continue
            check.links += 1
    for stylesheet in out.rglob("*.css"):
        _check_css(stylesheet, out, check)
    return check


def _check_css(stylesheet: Path, out: Path, check: SiteCheck) -> None:
    """A stylesheet may import fonts or other stylesheets: none from the network."""
    text = stylesheet.read_text(encoding="utf-8", errors="replace")
    for url in re.findall(r"@import\s+(?:url\()?['\"]?([^'\")\s;]+)", text) + re.findall(
            r"url\(\s*['\"]?(https?:[^'\")]+)", text):
        if _is_external(url):
            check.problems.append(f"{stylesheet.relative_to(out)}: loads {url} from the network")


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """Build (unless --check-only) and check the book; 0 when it built and every check passed."""
    parser = argparse.ArgumentParser(prog="python book/build_book.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "build" / "notebooks",
                        help="the executed notebooks (make course's build/notebooks)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="the site's folder")
    parser.add_argument("--check-only", action="store_true", help="check an existing site, build nothing")
    args = parser.parse_args(argv)
    try:
        if not args.check_only:
            build(args.notebooks.resolve(), args.out.resolve())
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    check = check_site(args.out)
    print(f"Checked the site: {check.summary()}")
    for problem in check.problems[:30]:
        print(f"  {problem}", file=sys.stderr)
    return 1 if check.problems else 0


if __name__ == "__main__":
    sys.exit(main())
