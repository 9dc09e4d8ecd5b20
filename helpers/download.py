"""The real TGS Salt Identification data in one command, unpacked into the layout the course reads.

    python -m helpers.data download DEST                  # from Kaggle, with your Kaggle credentials
    python -m helpers.data download DEST --from-zip FILE  # the competition zip you downloaded by hand

Either way the files are unpacked into a staging folder beside DEST, checked with the course's reader
(``helpers.data.load_train`` and ``load_test``: every image and mask decodes, sizes, ids, train.csv) and
counted (4000 labelled pairs, 18000 test sections), and only then renamed to DEST. Any failure removes
the staging folder, so DEST is never left half-written; an existing DEST that is not empty is refused.

Kaggle's official ``kaggle`` package does the download (``pip install kaggle``, or ``pip install -e ".[data]"``);
it is imported only here, when a download is asked for. It needs an API token (https://www.kaggle.com/settings,
"API": ``KAGGLE_API_TOKEN`` or ``~/.kaggle/access_token``, or the older ``~/.kaggle/kaggle.json``), and the
competition's rules accepted once on its page with the same account.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

COMPETITION = "tgs-salt-identification-challenge"
COMPETITION_URL = f"https://www.kaggle.com/competitions/{COMPETITION}"
RULES_URL = f"{COMPETITION_URL}/rules"
EXPECTED_COUNTS = (4000, 18000)  # labelled pairs, test sections
CSV_FILES = ("train.csv", "depths.csv", "sample_submission.csv")


class DownloadError(Exception):
    """A download or unpacking that could not be done; the message says what to do."""


# ----------------------------------------------------------------------------- fetching from Kaggle


def _status_code(error: BaseException) -> int | None:
    """The HTTP status of a requests/urllib3/kaggle error, if it carries one."""
    response = getattr(error, "response", None)
    for candidate in (getattr(response, "status_code", None), getattr(response, "status", None),
                      getattr(error, "status", None), getattr(error, "code", None)):
        if isinstance(candidate, int):
            return candidate
    return None


def _is_network_error(error: BaseException) -> bool:
    """True for a failure to reach the server (DNS, refused or dropped connection, timeout)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"ConnectionError", "Timeout", "NewConnectionError", "MaxRetryError", "URLError",
                         "socket.gaierror", "gaierror", "TimeoutError", "ConnectTimeout", "ReadTimeout"})


def explain_kaggle_error(error: BaseException) -> str:
    """One message saying what went wrong with the Kaggle download and what to do about it."""
    status = _status_code(error)
    if status == 403:
        return (f"Kaggle refused the download (403): accept the competition's rules first, with the account "
                f"of your credentials, at {RULES_URL} (\"I Understand and Accept\"), then run this again.")
    if status == 401:
        return ("Kaggle did not accept your credentials (401): create a new API token at "
                "https://www.kaggle.com/settings (\"API\") and put it in KAGGLE_API_TOKEN or "
                "~/.kaggle/access_token (or kaggle.json in ~/.kaggle), then run this again.")
    if status == 404:
        return f"Kaggle did not find the competition {COMPETITION!r} (404); check {COMPETITION_URL}."
    if _is_network_error(error):
        return ("Kaggle could not be reached (no network?). Connect and run this again, or download the "
                f"competition zip by hand from {COMPETITION_URL}/data and run: "
                "python -m helpers.data download DEST --from-zip FILE")
    return f"the Kaggle download failed: {type(error).__name__}: {error}"


def kaggle_fetch(folder: Path) -> Path:
    """Download the competition's files with the official kaggle package into folder; the zip's path."""
    quiet = io.StringIO()  # the package prints its own sign-in help when it finds no credentials: ours is below
    try:
        with contextlib.redirect_stdout(quiet):
            from kaggle.api.kaggle_api_extended import KaggleApi  # importing kaggle tries to sign in already
    except ImportError as error:
        raise DownloadError('the "kaggle" package is not installed: pip install kaggle (or pip install -e ".[data]"),'
                            " then run this again") from error
    api = KaggleApi()
    try:
        with contextlib.redirect_stdout(quiet):
            api.authenticate()  # exits (SystemExit) when it finds no credentials at all
    except SystemExit as error:
        raise DownloadError(
            "no Kaggle credentials found: sign in at https://www.kaggle.com, create an API token under "
            "Settings > API, and either export KAGGLE_API_TOKEN=<token> or save it to ~/.kaggle/access_token "
            "(an older kaggle.json in ~/.kaggle works too); accept the competition's rules at "
            f"{RULES_URL}; then run this again. Or download the zip by hand and use --from-zip FILE.") from error
    except Exception as error:  # noqa: BLE001  (a network failure while checking a token, mostly)
        raise DownloadError(explain_kaggle_error(error)) from error
    try:
        api.competition_download_files(COMPETITION, path=str(folder), quiet=False)
    except Exception as error:  # noqa: BLE001
        raise DownloadError(explain_kaggle_error(error)) from error
    zips = sorted(folder.glob("*.zip"))
    if not zips:
        raise DownloadError(f"the Kaggle download left no zip file in {folder}")
    return zips[0]


# ----------------------------------------------------------------------------- unpacking


def _safe_extract(archive: Path, into: Path) -> None:
    """Extract a zip, refusing members that would land outside into."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            root = into.resolve()
            for member in zipped.namelist():
                target = (into / member).resolve()
                if target != root and root not in target.parents:
                    raise DownloadError(f"{archive.name} holds a path outside its folder: {member!r}")
            zipped.extractall(into)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"{archive} is not a readable zip file ({error}); download it again") from error


def _extract_competition(archive: Path, into: Path) -> None:
    """Extract the competition's zip, then the zips inside it that hold the images, each into its own folder.

    Kaggle's download holds train.zip and test.zip (images/ and masks/ inside), competition_data.zip (the same
    files once more, under competition_data/) and flamingo.zip (not part of the data). train.zip and test.zip
    are used when both are there, else competition_data.zip; any other zip is left alone.
    """
    _safe_extract(archive, into)
    deepest_first = sorted(into.rglob("*.zip"), key=lambda p: (len(p.parts), str(p)), reverse=True)
    inner = {path.stem: path for path in deepest_first}  # the shallowest of each name wins
    wanted = ["train", "test"] if {"train", "test"} <= inner.keys() else [
        stem for stem in ("competition_data", "train", "test") if stem in inner]
    for stem in wanted:
        _safe_extract(inner[stem], inner[stem].with_suffix(""))
        inner[stem].unlink()


def _shallowest(paths: list[Path]) -> Path | None:
    return min(paths, key=lambda p: (len(p.parts), str(p))) if paths else None


def _find_layout(work: Path) -> dict[str, Path]:
    """Where the unpacked competition keeps the pieces of Kaggle's layout."""
    train = _shallowest([d.parent for d in work.rglob("images") if d.is_dir() and (d.parent / "masks").is_dir()
                         and d.parent.name == "train"])
    test = _shallowest([d for d in work.rglob("images") if d.is_dir() and d.parent.name == "test"
                        and not (d.parent / "masks").exists()])
    found: dict[str, Path] = {}
    if train is not None:
        found["train/images"], found["train/masks"] = train / "images", train / "masks"
    if test is not None:
        found["test/images"] = test
    for name in CSV_FILES:
        csv = _shallowest([p for p in work.rglob(name) if p.is_file()])
        if csv is not None:
            found[name] = csv
    missing = [name for name in ("train/images", "test/images", "train.csv", "depths.csv") if name not in found]
    if missing:
        raise DownloadError(f"the competition files lack {', '.join(missing)}: is this the TGS Salt "
                            f"Identification Challenge's zip (from {COMPETITION_URL}/data)?")
    return found


def unpack(archive: Path, layout_dir: Path, scratch: Path) -> Path:
    """Unpack the competition zip (with its inner train.zip and test.zip) into Kaggle's layout in layout_dir."""
    _extract_competition(Path(archive), scratch)
    for name, source in _find_layout(scratch).items():
        target = layout_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))
    return layout_dir


# ----------------------------------------------------------------------------- checking


def verify(data_dir: Path, expected_counts: tuple[int, int] = EXPECTED_COUNTS) -> tuple[int, int]:
    """Read everything with the course's reader and compare the counts; (labelled pairs, test sections)."""
    from helpers.data import load_test, load_train

    try:
        n_train = len(load_train(data_dir, progress=False))
        n_test = len(load_test(data_dir, progress=False))
    except Exception as error:  # noqa: BLE001  (DataError names the file at fault)
        raise DownloadError(f"the unpacked files do not read as the course expects: {error}") from error
    if (n_train, n_test) != tuple(expected_counts):
        raise DownloadError(f"expected {expected_counts[0]} labelled pairs and {expected_counts[1]} test sections, "
                            f"found {n_train} and {n_test}: the download is incomplete or not the competition's")
    return n_train, n_test


# ----------------------------------------------------------------------------- the whole thing


def check_destination(dest: Path) -> None:
    """Refuse a destination that exists and is not an empty folder."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DownloadError(f"{dest} already exists and is not empty; nothing was changed. Choose a new folder "
                            "(or remove that one yourself)")


def download(dest: str | Path, from_zip: str | Path | None = None,
             expected_counts: tuple[int, int] = EXPECTED_COUNTS,
             fetch: Callable[[Path], Path] = kaggle_fetch, stream: TextIO | None = None) -> Path:
    """Fetch (or take from_zip), unpack, verify and move into dest; returns dest. Raises DownloadError."""
    stream = sys.stdout if stream is None else stream
    dest = Path(dest).expanduser().absolute()
    check_destination(dest)
    if from_zip is not None and not Path(from_zip).expanduser().is_file():
        raise DownloadError(f"--from-zip {from_zip}: no such file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        if from_zip is None:
            print(f"Downloading the {COMPETITION} files from Kaggle ...", file=stream, flush=True)
            (staging / "download").mkdir()
            archive = fetch(staging / "download")
        else:
            archive = Path(from_zip).expanduser()
        print(f"Unpacking {archive.name} ...", file=stream, flush=True)
        layout = unpack(archive, staging / "data", staging / "unpacked")
        print("Checking every image and mask with the course's reader ...", file=stream, flush=True)
        n_train, n_test = verify(layout, expected_counts)
        check_destination(dest)  # again: something may have appeared there meanwhile
        if dest.exists():
            dest.rmdir()
        os.rename(layout, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"Done: {n_train} labelled pairs and {n_test} test sections in {dest}\n"
          f"Set this to use them in every notebook and test:\n    export SALT_DATA_DIR={dest}", file=stream)
    return dest


def main(argv: Sequence[str] | None = None, fetch: Callable[[Path], Path] = kaggle_fetch,
         expected_counts: tuple[int, int] = EXPECTED_COUNTS) -> int:
    """`download DEST [--from-zip FILE]`; 0 on success, 1 with one message on stderr otherwise."""
    parser = argparse.ArgumentParser(prog="python -m helpers.data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("download", help="fetch, unpack and check the real competition data")
    command.add_argument("dest", help="the folder to create (must not exist, or be empty)")
    command.add_argument("--from-zip", default=None, metavar="FILE",
                         help="unpack this competition zip (downloaded by hand) instead of downloading")
    args = parser.parse_args(argv)
    try:
        download(args.dest, from_zip=args.from_zip, expected_counts=expected_counts, fetch=fetch)
    except (DownloadError, OSError) as error:  # OSError: a folder that cannot be written, a full disk
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was left in the destination", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
