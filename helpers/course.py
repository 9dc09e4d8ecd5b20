"""Run the whole course: execute every notebook in order with papermill and report how each went.

    python -m helpers.course                              # the whole course, built-in data, laptop-sized
    python -m helpers.course -p EPOCHS 2 -p N_IMAGES 96   # smaller still
    python -m helpers.course --data-dir /data/tgs-salt --only 04,05,06

Each ``-p NAME VALUE`` goes only to the notebooks whose parameters cell declares NAME; values are
read like papermill's command line does (``3`` is an int, ``0.5`` a float, ``True`` a bool, the rest
text). Paths given on the command line are taken relative to the folder you run from. Executed
copies land in ``OUTPUT_DIR/notebooks``, figures in ``OUTPUT_DIR/figures``, the numbers each notebook
records in ``OUTPUT_DIR/results``, and the training run that notebooks 04, 05 and 06 share in
``OUTPUT_DIR/runs/<timestamp>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.parameters import PARAMETER_RULES, check_parameters

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
KERNEL_NAME = "python3"

# Each notebook runs at its own defaults (the parameters cell), sized so that the whole course finishes on
# 2 CPU cores in under half an hour; -p changes them.
# Parameters that name files or folders: made absolute, because the notebooks run in notebooks/.
PATH_PARAMETERS = ("DATA_DIR", "RUN_DIR", "TEST_DIR", "SUBMISSION_CSV", "FIGURE_DIR", "RESULTS_JSON")
TRAINING_NOTEBOOK_PREFIX = "04"


@dataclass
class NotebookResult:
    """How one notebook's execution went."""

    notebook: Path
    output: Path
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when every cell ran without an error."""
        return not self.error


# ----------------------------------------------------------------------------- command line


def parse_value(text: str) -> Any:
    """A command-line value as papermill's CLI reads it: True/False/None, int, float, else the text."""
    constants = {"True": True, "False": False, "None": None}
    if text in constants:
        return constants[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the runner's command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m helpers.course", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a notebook parameter, e.g. -p EPOCHS 2 (repeatable)")
    parser.add_argument("--data-dir", default=None, help="a folder in Kaggle's layout (same as -p DATA_DIR DIR)")
    parser.add_argument("--only", default="", help="comma-separated notebook numbers to run, e.g. 01,04")
    parser.add_argument("--output-dir", default="build", help="where executed notebooks, figures and runs go")
    parser.add_argument("--notebook-dir", default=str(NOTEBOOK_DIR), help=argparse.SUPPRESS)
    parser.add_argument("--log-output", action="store_true", help="stream every cell's output while it runs")
    args = parser.parse_args(argv)
    for name, _ in args.parameter:
        if not name.isidentifier() or not name.isupper():
            parser.error(f"parameter names are ALL_CAPS identifiers such as EPOCHS; got {name!r}")
    return args


def command_line_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The -p values (typed) and --data-dir as one dict; later -p values win."""
    parameters = {name: parse_value(value) for name, value in args.parameter}
    if args.data_dir is not None:
        parameters["DATA_DIR"] = args.data_dir
    return parameters


# ----------------------------------------------------------------------------- notebooks and parameters


def discover_notebooks(folder: str | Path) -> list[Path]:
    """The course's notebooks (NN_name.ipynb) in a folder, in course order."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def select_notebooks(notebooks: Sequence[Path], only: str) -> list[Path]:
    """The notebooks whose number is listed in only ("01,04"); all of them when only is empty."""
    wanted = [part.strip() for part in only.split(",") if part.strip()]
    if not wanted:
        return list(notebooks)
    numbers = {notebook.name[:2]: notebook for notebook in notebooks}
    unknown = [number for number in wanted if number.zfill(2) not in numbers]
    if unknown:
        raise ValueError(f"--only names notebooks {unknown} that do not exist; available: {sorted(numbers)}")
    return [notebook for notebook in notebooks if notebook.name[:2] in {n.zfill(2) for n in wanted}]


def declared_parameters(notebook: str | Path) -> set[str]:
    """The names assigned in a notebook's cell tagged `parameters` (empty when it has none)."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def parameters_for(notebook: str | Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters that this notebook declares."""
    declared = declared_parameters(notebook)
    return {name: value for name, value in parameters.items() if name in declared}


def absolute_paths(parameters: dict[str, Any], base: Path) -> dict[str, Any]:
    """Path parameters made absolute against base ("" stays "": it means the notebook's default)."""
    resolved = dict(parameters)
    for name in PATH_PARAMETERS:
        value = resolved.get(name)
        if isinstance(value, str) and value:
            resolved[name] = str((base / Path(value).expanduser()).resolve())
    return resolved


def shared_run_dir(notebooks: Sequence[Path], output_dir: Path) -> str:
    """A new run folder when the training notebook runs, else the latest run under output_dir/runs, else ""."""
    from helpers.run_folder import find_latest_run, new_run_dir

    runs = output_dir / "runs"
    if any(notebook.name.startswith(TRAINING_NOTEBOOK_PREFIX) for notebook in notebooks):
        return str(new_run_dir(runs))
    try:
        return str(find_latest_run(runs))
    except FileNotFoundError:
        return ""  # the notebooks then look under ../runs themselves


def course_parameters(notebooks: Sequence[Path], given: dict[str, Any], output_dir: Path,
                      base: Path) -> dict[str, Any]:
    """The command line's parameters, plus the shared figure folder and run folders."""
    parameters = {"FIGURE_DIR": str(output_dir / "figures"), **absolute_paths(given, base)}
    if "RUN_DIR" not in given:
        parameters["RUN_DIR"] = shared_run_dir(notebooks, output_dir)
    return parameters


def notebook_parameters(notebook: Path, parameters: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """The parameters one notebook declares, and its own RESULTS_JSON."""
    own = {**parameters, "RESULTS_JSON": str(output_dir / "results" / f"{notebook.stem}.json")}
    return parameters_for(notebook, own)


# ----------------------------------------------------------------------------- what the notebooks call


def require_run_dir(run_dir: str | Path, run_root: str | Path = "../runs") -> Path:
    """The run folder to read: RUN_DIR itself (it must hold a trained model), or the latest under run_root."""
    from helpers.run_folder import BEST_MODEL_FILE, CONFIG_FILE, find_latest_run

    if str(run_dir) == "":
        return find_latest_run(run_root)
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"RUN_DIR {path} does not exist: set RUN_DIR to a run folder written by notebook 04, "
                                f"or to \"\" for the latest run under {run_root}")
    missing = [name for name in (CONFIG_FILE, BEST_MODEL_FILE) if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(f"RUN_DIR {path} has no {' and no '.join(missing)}: train it first (notebook 04 "
                                "with this RUN_DIR) or choose a finished run folder")
    return path


def training_run_status(run_dir: str | Path, config: Any = None) -> str:
    """What training with this RUN_DIR will do ("new run" or "resume after epoch k"); raises if it cannot."""
    from helpers.run_folder import run_dir_status

    return run_dir_status(run_dir, config)


def cannot_write(folder: str | Path) -> str:
    """Why folder cannot be written into ("" when it can): it is created if missing, and a file is tried."""
    import tempfile

    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return ""
    except OSError as error:
        return error.strerror or str(error)


def run_figure_dir(run_dir: str | Path) -> Path | None:
    """The run folder's figures/ folder, or None with a note when the run folder is read-only.

    A run on a read-only disk (a shared course folder, a mounted data set) can still be evaluated and predicted
    from: its figures then go to FIGURE_DIR only.
    """
    from helpers.run_folder import FIGURES_DIR

    folder = Path(run_dir) / FIGURES_DIR
    reason = cannot_write(folder)
    if reason:
        print(f"Note: the run folder {run_dir} cannot be written ({reason}): figures are saved in FIGURE_DIR only")
        return None
    return folder


def submission_path(submission_csv: str | Path, run_dir: Path, fallback_dir: str | Path = "") -> Path:
    """Where to write the submission: SUBMISSION_CSV (which must not exist), else a free name in the run folder.

    When the run folder is read-only the free name is taken in fallback_dir instead, with a note.
    """
    from helpers.predict import available_path

    if str(submission_csv) == "":
        folder = Path(run_dir)
        reason = cannot_write(folder)
        if reason and str(fallback_dir):
            print(f"Note: the run folder {run_dir} cannot be written ({reason}): the submission goes to {fallback_dir}")
            folder = Path(fallback_dir)
        elif reason:
            raise PermissionError(f"the run folder {run_dir} cannot be written ({reason}): set SUBMISSION_CSV to a "
                                  "file in a folder you can write to")
        return available_path(folder / "submission.csv")
    path = Path(submission_csv).expanduser()
    if path.exists():
        raise FileExistsError(f"SUBMISSION_CSV {path} exists and submissions are never overwritten: choose a new name, "
                              "or \"\" for a free name in the run folder")
    return path


def write_results(path: str | Path, results: dict[str, Any]) -> Path:
    """Write a notebook's key figures as JSON (NumPy numbers and paths converted) and return the path."""
    import json

    import numpy as np

    def convert(value: Any) -> Any:
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"results value of type {type(value).__name__} cannot be written as JSON")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True, default=convert))
    return path


# ----------------------------------------------------------------------------- execution


def describe_failure(notebook: Path, error: BaseException) -> str:
    """Which notebook and cell failed, with the error (papermill's execution errors name the cell)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        source = (error.source or "").strip().splitlines()
        first_line = source[0] if source else ""
        return (f"{notebook.name} failed in cell {error.cell_index} (execution count {error.exec_count}, "
                f"starting {first_line!r}): {error.ename}: {error.evalue}")
    return f"{notebook.name} could not be run: {type(error).__name__}: {error}"


def run_notebook(notebook: Path, output: Path, parameters: dict[str, Any], log_output: bool = False) -> NotebookResult:
    """Execute one notebook with papermill (cwd: its folder) into output; errors are caught and described."""
    import papermill

    from helpers.tensorflow_env import apply_course_environment, kernel_manager_config

    apply_course_environment(for_children_only=True)  # the kernel inherits them: oneDNN on, no start-up lines
    output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    error = ""
    try:
        papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name=KERNEL_NAME,
                                   cwd=str(notebook.parent), progress_bar=False, log_output=log_output,
                                   config=kernel_manager_config())
    except Exception as exc:  # noqa: BLE001  (any failure is reported, never swallowed silently)
        error = describe_failure(notebook, exc)
    return NotebookResult(notebook=notebook, output=output, seconds=time.perf_counter() - started, error=error)


def run_course(notebooks: Sequence[Path], parameters: dict[str, Any], output_dir: Path, log_output: bool = False,
               stream: Any = None) -> list[NotebookResult]:
    """Run notebooks in order, one progress line each; stops at the first failure (later ones depend on it)."""
    stream = sys.stdout if stream is None else stream
    results = []
    for number, notebook in enumerate(notebooks, start=1):
        # Whole lines: the kernel may write warnings to the same terminal while it runs.
        label = f"[{number}/{len(notebooks)}] {notebook.name:<30}"
        print(f"{label} running ...", file=stream, flush=True)
        own = notebook_parameters(notebook, parameters, output_dir)
        result = run_notebook(notebook, output_dir / "notebooks" / notebook.name, own, log_output)
        print(f"{label} {result.seconds:7.1f} s  {'ok' if result.ok else 'FAILED'}", file=stream, flush=True)
        results.append(result)
        if not result.ok:
            print(f"\n{result.error}\nThe executed copy, with the error in place: {result.output}", file=stream)
            break
    return results


def prepare_builtin_data(data_dir: str | None, stream: Any = None) -> Path:
    """Resolve (and on first use generate) the data folder, and say where it is."""
    stream = sys.stdout if stream is None else stream
    from helpers.data import resolve_data_dir

    path = resolve_data_dir(data_dir or "")
    print(f"No notebooks found; the data set is ready at {path}", file=stream)
    return path


def check_given_parameters(given: dict[str, Any], notebooks: Sequence[Path]) -> None:
    """Refuse a -p value that cannot work, or a name no notebook declares (a typo would be ignored silently)."""
    known = set(PARAMETER_RULES).union(*(declared_parameters(notebook) for notebook in notebooks))
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"-p {', '.join(unknown)}: no notebook has such a parameter; "
                         f"known: {', '.join(sorted(known))}")
    checked = {name: value for name, value in given.items() if name in PARAMETER_RULES}
    check_parameters(how_to_change="Give another value with -p {name} VALUE.", **checked)


def writable_output_dir(output_dir: Path) -> Path:
    """Create OUTPUT_DIR if needed and prove it can be written, or say which folder and what to do."""
    reason = cannot_write(output_dir)
    if reason:
        raise PermissionError(f"--output-dir {output_dir} cannot be written ({reason}); "
                              "choose a folder you can write to, e.g. --output-dir build")
    return output_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 when every notebook ran, 2 for a usage mistake)."""
    args = parse_args(argv)
    try:
        return _run(args)
    except (ValueError, OSError) as error:  # the user's mistakes: bad values, folders, data (DataError)
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    base = Path.cwd()
    output_dir = (base / args.output_dir).resolve()
    notebooks = discover_notebooks(args.notebook_dir)
    given = command_line_parameters(args)
    if not notebooks:
        prepare_builtin_data(absolute_paths(given, base).get("DATA_DIR"))
        return 0
    chosen = select_notebooks(notebooks, args.only)
    check_given_parameters(given, notebooks)
    writable_output_dir(output_dir)
    parameters = course_parameters(chosen, given, output_dir, base)
    if any("DATA_DIR" in declared_parameters(notebook) for notebook in chosen):
        # Resolved here, in the terminal, so that generating the built-in set on first use shows its progress.
        from helpers.data import resolve_data_dir

        print(f"Data: {resolve_data_dir(parameters.get('DATA_DIR', ''))}", flush=True)
    shown = ", ".join(f"{name}={value!r}" for name, value in sorted(parameters.items()))
    plural = "s" if len(chosen) != 1 else ""
    print(f"Running {len(chosen)} notebook{plural} with {shown}\nOutputs under {output_dir}", flush=True)
    started = time.perf_counter()
    results = run_course(chosen, parameters, output_dir, args.log_output)
    failed = [result for result in results if not result.ok]
    status = "failed" if failed else "finished"
    print(f"Course {status}: {len(results) - len(failed)}/{len(chosen)} notebooks ok in "
          f"{time.perf_counter() - started:.0f} s; executed copies in {output_dir / 'notebooks'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
