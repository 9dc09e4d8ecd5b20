"""The course runner: argument parsing, parameter routing, failure reports and a real (tiny) run."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import nbformat
import pytest

from helpers import course
from helpers.course import (
    absolute_paths,
    command_line_parameters,
    course_parameters,
    declared_parameters,
    describe_failure,
    discover_notebooks,
    notebook_parameters,
    parameters_for,
    parse_args,
    parse_value,
    run_course,
    select_notebooks,
)


def write_notebook(path: Path, parameters: str, *cells: str) -> Path:
    """A notebook with a cell tagged `parameters` followed by the given code cells."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    tagged = nbformat.v4.new_code_cell(parameters)
    tagged.metadata["tags"] = ["parameters"]
    notebook.cells = [tagged, *(nbformat.v4.new_code_cell(source) for source in cells)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2", 2), ("-3", -3), ("0.5", 0.5), ("1e-3", 1e-3), ("True", True), ("False", False), ("None", None),
     ("bce_dice", "bce_dice"), ("", ""), ("/data/tgs", "/data/tgs"), ("true", "true")],
)
def test_values_are_typed_like_papermills_command_line(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_arguments_collect_parameters_and_the_data_folder():
    args = parse_args(["-p", "EPOCHS", "2", "-p", "LOSS", "dice", "--data-dir", "/d", "--only", "04,05"])
    assert command_line_parameters(args) == {"EPOCHS": 2, "LOSS": "dice", "DATA_DIR": "/d"}
    assert args.only == "04,05" and args.output_dir == "build"


def test_lowercase_parameter_names_are_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["-p", "epochs", "2"])
    assert "ALL_CAPS" in capsys.readouterr().err


def test_notebooks_are_found_in_course_order_and_selected_by_number(tmp_path):
    for name in ("04_training.ipynb", "02_data.ipynb", "scratch.ipynb", "05_evaluation.ipynb"):
        write_notebook(tmp_path / name, "X = 1")
    notebooks = discover_notebooks(tmp_path)
    assert [p.name for p in notebooks] == ["02_data.ipynb", "04_training.ipynb", "05_evaluation.ipynb"]
    assert [p.name for p in select_notebooks(notebooks, "5, 02")] == ["02_data.ipynb", "05_evaluation.ipynb"]
    assert select_notebooks(notebooks, "") == notebooks
    with pytest.raises(ValueError, match="'07'.*available"):
        select_notebooks(notebooks, "07")
    assert discover_notebooks(tmp_path / "missing") == []


def test_each_notebook_gets_only_the_parameters_it_declares(tmp_path):
    notebook = write_notebook(tmp_path / "01_a.ipynb", "EPOCHS = 3  # epochs\nRESULTS_JSON = ''\n")
    assert declared_parameters(notebook) == {"EPOCHS", "RESULTS_JSON"}
    assert parameters_for(notebook, {"EPOCHS": 2, "N_IMAGES": 64}) == {"EPOCHS": 2}
    own = notebook_parameters(notebook, {"EPOCHS": 2, "N_IMAGES": 64}, tmp_path / "build")
    assert own == {"EPOCHS": 2, "RESULTS_JSON": str(tmp_path / "build" / "results" / "01_a.json")}


def test_path_parameters_become_absolute_and_empty_ones_stay_empty(tmp_path):
    resolved = absolute_paths({"DATA_DIR": "data/tgs", "RUN_DIR": "", "EPOCHS": 2}, tmp_path)
    assert resolved == {"DATA_DIR": str(tmp_path / "data" / "tgs"), "RUN_DIR": "", "EPOCHS": 2}


def test_course_parameters_start_from_the_defaults_and_share_a_new_run_folder(tmp_path):
    notebooks = [tmp_path / "04_training.ipynb", tmp_path / "05_evaluation.ipynb"]
    parameters = course_parameters(notebooks, {"EPOCHS": 1}, tmp_path / "build", tmp_path)
    assert parameters["EPOCHS"] == 1 and "N_IMAGES" not in parameters  # each notebook keeps its own default
    run_dir = Path(parameters["RUN_DIR"])
    assert run_dir.parent == tmp_path / "build" / "runs" and run_dir.is_dir() and not any(run_dir.iterdir())
    assert parameters["FIGURE_DIR"] == str(tmp_path / "build" / "figures")


def test_without_the_training_notebook_the_latest_run_is_reused(tmp_path):
    old, new = tmp_path / "build" / "runs" / "20240101-000000", tmp_path / "build" / "runs" / "20250101-000000"
    for run in (old, new):
        run.mkdir(parents=True)
        (run / "best.keras").write_text("")
    parameters = course_parameters([tmp_path / "05_evaluation.ipynb"], {}, tmp_path / "build", tmp_path)
    assert parameters["RUN_DIR"] == str(new)
    assert course_parameters([tmp_path / "02_data.ipynb"], {}, tmp_path / "empty", tmp_path)["RUN_DIR"] == ""


def test_a_failing_cell_is_named_with_its_error_and_later_notebooks_are_skipped(tmp_path):
    failing = write_notebook(tmp_path / "nb" / "01_fails.ipynb", "X = 1", "y = X + 1", "raise ValueError('X is bad')")
    never = write_notebook(tmp_path / "nb" / "02_never.ipynb", "X = 1")
    stream = io.StringIO()
    results = run_course([failing, never], {}, tmp_path / "build", stream=stream)
    assert len(results) == 1 and not results[0].ok
    report = stream.getvalue()
    assert "01_fails.ipynb" in report and "FAILED" in report
    assert "ValueError: X is bad" in results[0].error and "cell" in results[0].error
    assert "raise ValueError" in results[0].error
    assert (tmp_path / "build" / "notebooks" / "01_fails.ipynb").exists()


def test_describe_failure_of_a_non_execution_error():
    described = describe_failure(Path("03_x.ipynb"), OSError("no kernel"))
    assert described == "03_x.ipynb could not be run: OSError: no kernel"


def test_main_runs_a_tiny_notebook_passing_only_its_parameters(tmp_path, monkeypatch, capsys):
    notebooks = tmp_path / "notebooks"
    write_notebook(
        notebooks / "01_tiny.ipynb",
        "EPOCHS = 50  # passes\nRESULTS_JSON = 'unset.json'  # where the numbers go\n",
        "import json, pathlib\npath = pathlib.Path(RESULTS_JSON)\npath.parent.mkdir(parents=True, exist_ok=True)\n"
        "path.write_text(json.dumps({'epochs': EPOCHS, 'cwd': str(pathlib.Path.cwd()),\n"
        "                            'onednn': __import__('os').environ.get('TF_ENABLE_ONEDNN_OPTS')}))",
    )
    monkeypatch.chdir(tmp_path)
    code = course.main(["-p", "EPOCHS", "2", "-p", "LOSS", "dice", "--notebook-dir", str(notebooks),
                        "--output-dir", "out"])
    output = capsys.readouterr().out
    assert code == 0, output
    assert "[1/1] 01_tiny.ipynb" in output and output.rstrip().splitlines()[-2].endswith("s  ok")
    recorded = json.loads((tmp_path / "out" / "results" / "01_tiny.json").read_text())
    assert recorded == {"epochs": 2, "cwd": str(notebooks), "onednn": "1"}  # the course's TensorFlow settings
    executed = nbformat.read(tmp_path / "out" / "notebooks" / "01_tiny.ipynb", as_version=4)
    assert "LOSS" not in "".join(cell.source for cell in executed.cells)


def test_main_with_no_notebooks_prepares_the_data(tmp_path, monkeypatch, capsys, synthetic_data_dir):
    monkeypatch.chdir(tmp_path)
    code = course.main(["--notebook-dir", str(tmp_path / "none"), "--data-dir", str(synthetic_data_dir)])
    assert code == 0
    assert f"ready at {synthetic_data_dir}" in capsys.readouterr().out


def test_main_refuses_an_unknown_notebook_number(tmp_path, monkeypatch, capsys):
    write_notebook(tmp_path / "notebooks" / "01_a.ipynb", "X = 1")
    monkeypatch.chdir(tmp_path)
    assert course.main(["--notebook-dir", str(tmp_path / "notebooks"), "--only", "09"]) == 2
    assert "09" in capsys.readouterr().err


# ----------------------------------------------------------------------------- checks the notebooks run first


def make_run(folder: Path, finished: bool = True) -> Path:
    """A fake run folder: config.json and best.keras (and metrics.json when finished)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "best.keras").write_text("")
    if finished:
        (folder / "metrics.json").write_text("{}")
    return folder


def test_require_run_dir_takes_the_given_run_or_the_latest(tmp_path):
    older, newer = make_run(tmp_path / "runs" / "2024"), make_run(tmp_path / "runs" / "2025")
    assert course.require_run_dir(str(older), tmp_path / "runs") == older
    assert course.require_run_dir("", tmp_path / "runs") == newer
    with pytest.raises(FileNotFoundError, match="does not exist"):
        course.require_run_dir(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json and no best.keras"):
        course.require_run_dir(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="no trained run"):
        course.require_run_dir("", tmp_path / "nothing")


def test_training_run_status_says_what_train_will_do(tmp_path):
    assert course.training_run_status("") == "new run"
    assert course.training_run_status(tmp_path / "new") == "new run"
    interrupted = make_run(tmp_path / "interrupted", finished=False)
    (interrupted / "state.json").write_text(json.dumps({"completed_epochs": 3}))
    assert course.training_run_status(interrupted) == "resume after epoch 3"
    with pytest.raises(FileExistsError, match="finished run"):
        course.training_run_status(make_run(tmp_path / "finished"))
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a run folder"):
        course.training_run_status(tmp_path / "stray")


def test_submission_path_never_points_at_an_existing_file(tmp_path):
    assert course.submission_path("", tmp_path) == tmp_path / "submission.csv"
    (tmp_path / "submission.csv").write_text("id,rle_mask\n")
    assert course.submission_path("", tmp_path) == tmp_path / "submission-2.csv"
    with pytest.raises(FileExistsError, match="never overwritten"):
        course.submission_path(str(tmp_path / "submission.csv"), tmp_path)
    assert course.submission_path(str(tmp_path / "mine.csv"), tmp_path) == tmp_path / "mine.csv"


def test_write_results_converts_numpy_values(tmp_path):
    import numpy as np

    path = course.write_results(tmp_path / "deep" / "r.json", {"a": np.float32(0.5), "b": np.arange(2), "c": tmp_path})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1], "c": str(tmp_path)}
    with pytest.raises(TypeError, match="object"):
        course.write_results(tmp_path / "bad.json", {"x": object()})


@pytest.mark.parametrize(("arguments", "message"), [
    (["-p", "EPOCS", "2"], "-p EPOCS: no notebook has such a parameter"),
    (["-p", "EPOCHS", "-1"], "EPOCHS must be a positive integer"),
    (["-p", "AUGMENT", "yes"], "AUGMENT must be True or False; got 'yes'"),
    (["--data-dir", "no-such-folder"], "DATA_DIR must be .* or an existing folder"),
    (["--data-dir", "."], "has neither train/images nor test/images"),
])
def test_main_reports_a_mistake_in_one_line_before_running_anything(tmp_path, monkeypatch, capsys, arguments,
                                                                     message):
    write_notebook(tmp_path / "notebooks" / "01_a.ipynb", "EPOCHS = 1\nDATA_DIR = ''\nAUGMENT = True")
    monkeypatch.chdir(tmp_path)
    assert course.main(["--notebook-dir", str(tmp_path / "notebooks"), *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err
    assert re.search(message, captured.err), captured.err
    assert not (tmp_path / "build" / "notebooks").exists()


def test_main_names_an_output_folder_it_cannot_write(tmp_path, monkeypatch, capsys, read_only_dir):
    write_notebook(tmp_path / "notebooks" / "01_a.ipynb", "EPOCHS = 1")
    (tmp_path / "locked").mkdir()
    read_only_dir(tmp_path / "locked")
    monkeypatch.chdir(tmp_path)
    assert course.main(["--notebook-dir", str(tmp_path / "notebooks"), "--output-dir", "locked/out"]) == 2
    assert re.match(r"error: --output-dir .*locked/out cannot be written \(Read-only file system|Permission denied",
                    capsys.readouterr().err)


def test_a_read_only_run_folder_keeps_its_figures_and_submission_elsewhere(tmp_path, read_only_dir, capsys):
    run = make_run(tmp_path / "run")
    assert course.run_figure_dir(run) == run / "figures" and (run / "figures").is_dir()
    read_only_dir(run)
    assert course.run_figure_dir(run) is None
    assert "cannot be written" in capsys.readouterr().out
    elsewhere = tmp_path / "elsewhere"
    assert course.submission_path("", run, fallback_dir=elsewhere) == elsewhere / "submission.csv"
    assert "the submission goes to" in capsys.readouterr().out
    with pytest.raises(PermissionError, match="set SUBMISSION_CSV"):
        course.submission_path("", run)


def test_the_runner_starts_its_kernels_without_ipykernels_plain_tcp_warning(tmp_path, capfd):
    from helpers.tensorflow_env import kernel_manager_config

    if "KernelManager" not in kernel_manager_config():
        pytest.skip("no CurveZMQ in pyzmq or no transport_encryption in jupyter_client: the kernel cannot encrypt")
    tiny = write_notebook(tmp_path / "nb" / "01_tiny.ipynb", "X = 1", "print(X + 1)")
    result = course.run_notebook(tiny, tmp_path / "out.ipynb", {})
    assert result.ok, result.error
    assert "without encryption" not in capfd.readouterr().err
