"""Run notebooks again and again with papermill while busy processes load the CPU: a check for kernel deaths.

Issue 18: notebook 01's kernel died now and then ("Kernel died while waiting for execute reply") in its
Keras comparison grid, more often while other processes kept the cores busy. This script repeats what the
course runner does (papermill, cwd notebooks/, the notebook's default parameters unless -p says otherwise;
FIGURE_DIR and RESULTS_JSON go to the run folder) RUNS times per notebook, with LOAD processes spinning on
the CPU the whole time (`python -c "while True: pass"`, started and killed by the script).

    python -m benchmarks.stress_notebooks                       # notebook 01, 30 runs, 2 load processes
    python -m benchmarks.stress_notebooks --notebook 01 --notebook 03 --runs 30
    python -m benchmarks.stress_notebooks --runs 3 --load 0     # no load: a quick look
    python -m benchmarks.stress_notebooks --runs 5 -p N_RANDOM_CHECKS 400   # a longer grid in notebook 01

Each run's kernel has faulthandler on (a sitecustomize.py put on its PYTHONPATH), so a fatal signal (SIGSEGV,
SIGABRT from glibc's heap checks) leaves the Python stack of the cell that was running in the run's log. A run
is `ok`, `died` (the kernel died), `hung` (killed after --timeout seconds) or `failed` (any other error).
Output: one line per run, a summary, and build/stress/<UTC time>/ with every run's log and summary.json
(--out to change the folder). The exit code is 0 only when every run passed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
DEFAULT_OUT_DIR = ROOT / "build" / "stress"
DEFAULT_NOTEBOOKS = ("01",)
SPIN = "while True: pass"
# Lines of a run's log that say why a kernel died: glibc's heap checks, faulthandler, papermill.
CAUSE_PATTERN = re.compile(
    r"(Fatal Python error: .*|.*(corrupted|invalid pointer|invalid next size|double free).*|DeadKernelError.*)"
)


@dataclass
class RunResult:
    notebook: str
    run: int
    outcome: str  # ok | died | hung | failed
    seconds: float
    returncode: int | None
    cause: str  # the first lines of the log that explain a failure; "" when ok
    log: str


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", action="append", default=None, metavar="PREFIX",
                        help="a notebook in notebooks/ by name or number prefix (01, 03_unet...); repeatable; "
                             f"default {', '.join(DEFAULT_NOTEBOOKS)}")
    parser.add_argument("--runs", type=positive_int, default=30, help="runs per notebook (default 30)")
    parser.add_argument("--load", type=non_negative_int, default=2,
                        help="busy processes kept spinning during the runs (default 2: both cores of a laptop)")
    parser.add_argument("--timeout", type=positive_int, default=300,
                        help="seconds before a run counts as hung and is killed (default 300)")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT_DIR}/<UTC time>)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter, passed to papermill as -p NAME VALUE (default: none; the "
                             "notebook's own defaults)")
    parser.add_argument("--stop-at-first-failure", action="store_true",
                        help="stop a notebook's runs at its first failure (default: run them all)")
    return parser.parse_args(argv)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def resolve_notebooks(prefixes: Sequence[str], notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebook each prefix names (exactly one match each), in the order given."""
    available = sorted(notebook_dir.glob("*.ipynb"))
    chosen = []
    for prefix in prefixes:
        matches = [path for path in available if path.name.startswith(prefix)]
        if len(matches) != 1:
            names = ", ".join(path.name for path in available)
            raise ValueError(f"--notebook {prefix!r} matches {len(matches)} notebooks; available: {names}")
        chosen.append(matches[0])
    return chosen


def start_load(count: int) -> list[subprocess.Popen]:
    """count Python processes spinning on the CPU until stop_load."""
    return [subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL) for _ in range(count)]


def stop_load(processes: Sequence[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait()


def classify(returncode: int | None, log_text: str) -> str:
    """ok, died, hung or failed, from papermill's exit code (None: killed at the timeout) and its log."""
    if returncode is None:
        return "hung"
    if returncode == 0:
        return "ok"
    return "died" if "DeadKernelError" in log_text or "Kernel died" in log_text else "failed"


def explain(log_text: str, limit: int = 4) -> str:
    """The lines of a failed run's log that say why, joined with ' | ' (at most limit of them)."""
    lines = [match.group(0).strip() for match in CAUSE_PATTERN.finditer(log_text)]
    if not lines:
        lines = [line for line in log_text.strip().splitlines()[-2:]]
    return " | ".join(dict.fromkeys(lines[:limit]))


# Imported at start-up by every Python process of a run (papermill and the kernel, through PYTHONPATH): sends
# faulthandler's report to a file of its own. The kernel's stderr cannot carry it: ipykernel sends file
# descriptor 2 to the notebook through a pipe, and what is in the pipe when the kernel dies is lost.
SITECUSTOMIZE = """\
import faulthandler, os
_folder = os.environ.get("STRESS_FAULT_DIR")
if _folder:
    _fault_log = open(os.path.join(_folder, f"faulthandler-{os.getpid()}.log"), "w")
    faulthandler.enable(file=_fault_log, all_threads=False)
"""


def fault_reports(folder: Path) -> str:
    """What faulthandler wrote in folder's files (empty ones are removed): the fatal error and its Python stack."""
    reports = []
    for path in sorted(folder.glob("faulthandler-*.log")):
        text = path.read_text(errors="replace")
        if text.strip():
            reports.append(f"--- {path.name}\n{text}")
        else:
            path.unlink()
    return "\n".join(reports)


def run_once(notebook: Path, run: int, out_dir: Path, timeout: int,
             parameters: Sequence[Sequence[str]] = ()) -> RunResult:
    """One papermill run of notebook, cwd notebooks/, its default parameters but these; its log in out_dir."""
    stem = f"{notebook.stem}-run{run:02d}"
    log_path = out_dir / f"{stem}.log"
    command = [sys.executable, "-m", "papermill", str(notebook), str(out_dir / f"{stem}.ipynb"),
               "--cwd", str(notebook.parent), "--log-output", "--no-progress-bar",
               "-p", "FIGURE_DIR", str(out_dir / "figures"), "-p", "RESULTS_JSON", str(out_dir / f"{stem}.json")]
    command += [item for name, value in parameters for item in ("-p", name, value)]
    site = out_dir / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    faults = out_dir / f"{stem}-faults"
    faults.mkdir(exist_ok=True)
    python_path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "STRESS_FAULT_DIR": str(faults), "TF_CPP_MIN_LOG_LEVEL": "2",
           "MPLBACKEND": "Agg"}
    started = time.perf_counter()
    # The log is a file, not a pipe: nothing waits on a pipe that a stray kernel still holds open.
    with log_path.open("w") as log:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            returncode: int | None = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # papermill and its kernel
            child.wait()
            returncode = None
    seconds = time.perf_counter() - started
    reports = fault_reports(faults)
    if reports:
        with log_path.open("a") as log:
            log.write(f"\n=== faulthandler (the kernel's and papermill's fatal errors)\n{reports}")
    else:
        faults.rmdir()
    log_text = log_path.read_text(errors="replace")
    outcome = classify(returncode, log_text)
    return RunResult(notebook.name, run, outcome, round(seconds, 1), returncode,
                     "" if outcome == "ok" else explain(log_text), str(log_path))


def summarize(results: Sequence[RunResult]) -> dict[str, dict[str, int]]:
    """Per notebook: how many runs ended in each outcome."""
    summary: dict[str, dict[str, int]] = {}
    for result in results:
        counts = summary.setdefault(result.notebook, {"runs": 0, "ok": 0, "died": 0, "hung": 0, "failed": 0})
        counts["runs"] += 1
        counts[result.outcome] += 1
    return summary


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    notebooks = resolve_notebooks(args.notebook or DEFAULT_NOTEBOOKS)
    started_at = datetime.now(UTC)
    out_dir = args.out or DEFAULT_OUT_DIR / started_at.strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(notebooks)} notebook(s) x {args.runs} runs, {args.load} load process(es), "
          f"{os.cpu_count()} CPU(s): {cpu_model()}; logs in {out_dir}", flush=True)
    results: list[RunResult] = []
    load = start_load(args.load)
    try:
        for notebook in notebooks:
            for run in range(1, args.runs + 1):
                result = run_once(notebook, run, out_dir, args.timeout, args.parameter)
                results.append(result)
                print(f"{notebook.name:34} run {run:2d}/{args.runs}: {result.outcome:6} {result.seconds:6.1f} s"
                      + (f"  {result.cause}" if result.cause else ""), flush=True)
                if result.outcome != "ok" and args.stop_at_first_failure:
                    break
    finally:
        stop_load(load)
    summary = summarize(results)
    record = {"started_at": started_at.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
              "cpu": cpu_model(), "cpu_count": os.cpu_count(), "load_processes": args.load,
              "timeout_s": args.timeout, "parameters": dict(args.parameter),
              "env": {name: os.environ.get(name) for name in ("TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS")},
              "summary": summary, "runs": [asdict(result) for result in results]}
    (out_dir / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    for name, counts in summary.items():
        print(f"{name}: {counts['ok']}/{counts['runs']} ok, {counts['died']} died, {counts['hung']} hung, "
              f"{counts['failed']} failed")
    return 0 if all(result.outcome == "ok" for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
