"""benchmarks.stress_notebooks: its options, notebook choice and verdicts (no notebook is run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.stress_notebooks import (
    SITECUSTOMIZE,
    RunResult,
    classify,
    explain,
    fault_reports,
    parse_args,
    resolve_notebooks,
    summarize,
)


def test_defaults_are_thirty_runs_of_notebook_01_beside_two_busy_processes() -> None:
    args = parse_args([])
    assert (args.notebook, args.runs, args.load, args.timeout, args.out) == (None, 30, 2, 300, None)
    assert args.parameter == [] and not args.stop_at_first_failure


def test_options_are_parsed() -> None:
    args = parse_args(["--notebook", "01", "--notebook", "03", "--runs", "3", "--load", "0", "--timeout", "60",
                       "--out", "somewhere", "--stop-at-first-failure", "-p", "N_RANDOM_CHECKS", "400",
                       "--parameter", "SEED", "1"])
    assert args.notebook == ["01", "03"] and (args.runs, args.load, args.timeout) == (3, 0, 60)
    assert args.parameter == [["N_RANDOM_CHECKS", "400"], ["SEED", "1"]]
    assert args.out == Path("somewhere") and args.stop_at_first_failure


@pytest.mark.parametrize("argv", [["--runs", "0"], ["--load", "-1"], ["--timeout", "0"], ["--runs", "many"]])
def test_bad_numbers_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_notebooks_are_found_by_prefix_in_the_order_given(tmp_path: Path) -> None:
    for name in ("01_a.ipynb", "03_b.ipynb", "03x_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert resolve_notebooks(["03_", "01"], tmp_path) == [tmp_path / "03_b.ipynb", tmp_path / "01_a.ipynb"]
    with pytest.raises(ValueError, match="matches 2 notebooks"):
        resolve_notebooks(["03"], tmp_path)
    with pytest.raises(ValueError, match="matches 0 notebooks; available: 01_a.ipynb"):
        resolve_notebooks(["09"], tmp_path)


def test_the_course_notebooks_01_and_03_are_found() -> None:
    assert [path.name[:2] for path in resolve_notebooks(["01", "03"])] == ["01", "03"]


def test_verdicts_and_their_causes() -> None:
    died = ("corrupted size vs. prev_size\nFatal Python error: Aborted\n\nCurrent thread ...\n"
            "nbclient.exceptions.DeadKernelError: Kernel died\n")
    assert classify(0, "") == "ok"
    assert classify(None, "") == "hung"
    assert classify(1, died) == "died"
    assert classify(1, "papermill.exceptions.PapermillExecutionError: AssertionError") == "failed"
    assert explain(died) == ("corrupted size vs. prev_size | Fatal Python error: Aborted | "
                             "DeadKernelError: Kernel died")
    assert explain("first\nsecond\nlast line") == "second | last line"


def test_summary_counts_outcomes_per_notebook() -> None:
    results = [RunResult("01.ipynb", 1, "ok", 1.0, 0, "", "a"), RunResult("01.ipynb", 2, "died", 1.0, 1, "x", "b"),
               RunResult("03.ipynb", 1, "hung", 300.0, None, "y", "c")]
    assert summarize(results) == {
        "01.ipynb": {"runs": 2, "ok": 1, "died": 1, "hung": 0, "failed": 0},
        "03.ipynb": {"runs": 1, "ok": 0, "died": 0, "hung": 1, "failed": 0},
    }


def test_fault_reports_keep_what_faulthandler_wrote_and_drop_empty_files(tmp_path: Path) -> None:
    compile(SITECUSTOMIZE, "sitecustomize.py", "exec")
    (tmp_path / "faulthandler-11.log").write_text("")
    (tmp_path / "faulthandler-12.log").write_text("Fatal Python error: Aborted\n  File \"<cell>\", line 3\n")
    report = fault_reports(tmp_path)
    assert report.startswith("--- faulthandler-12.log\nFatal Python error: Aborted")
    assert [path.name for path in tmp_path.iterdir()] == ["faulthandler-12.log"]
