"""Notebook 01 is committed clean, runs headless with small parameters, and prints what it teaches.

nbval (`pytest --nbval-lax`) compares a cell tagged `nbval-check-output` only when the notebook stores that
cell's output; our notebooks are committed without outputs, so nbval would merely run the cells. Here the
notebook is executed once with papermill and every marked cell's printed text is compared with the text
kept in tests/expected_outputs/01_transposed_convolution.json. After an intended change, rewrite that file
with ``UPDATE_EXPECTED_OUTPUTS=1 pytest tests/test_notebook_01.py`` and review its diff.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import nbformat
import papermill
import pytest

from helpers.course import notebook_parameters, run_notebook

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = PROJECT_ROOT / "notebooks" / "01_transposed_convolution.ipynb"
EXPECTED_OUTPUTS = Path(__file__).parent / "expected_outputs" / "01_transposed_convolution.json"
CHECK_TAG = "nbval-check-output"
SMALL_PARAMETERS = {"SEED": 0, "N_RANDOM_CHECKS": 5, "LEARN_STEPS": 10}
FIGURES = ["01_scatter_contributions", "01_conv_matrix", "01_overlap_counts", "01_flat_input_response",
           "01_learned_upsampling"]


def marked_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The code cells tagged nbval-check-output (the tag nbval reads; invisible to the reader)."""
    return [cell for cell in notebook.cells if cell.cell_type == "code" and CHECK_TAG in cell.metadata.get("tags", [])]


def printed_text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell wrote to stdout, joined (the kernel may split one print into several chunks)."""
    return "".join(output.text for output in cell.outputs if output.output_type == "stream" and output.name == "stdout")


def parameter_names(cell: nbformat.NotebookNode) -> list[str]:
    """Names assigned in a parameters cell, in order."""
    return [target.id for node in ast.parse(cell.source).body for target in node.targets]


@pytest.fixture(scope="module")
def committed() -> nbformat.NotebookNode:
    """The notebook as committed."""
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, dict]:
    """The notebook run once like the course runner does it (papermill, cwd notebooks/), and its results."""
    out = tmp_path_factory.mktemp("notebook_01")
    parameters = notebook_parameters(NOTEBOOK, {**SMALL_PARAMETERS, "FIGURE_DIR": str(out / "figures")}, out)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        result = run_notebook(NOTEBOOK, out / "executed.ipynb", parameters)
    assert result.ok, f"{result.error}\n(executed copy: {result.output})"
    results = json.loads(Path(parameters["RESULTS_JSON"]).read_text())
    return nbformat.read(result.output, as_version=4), {**results, "figure_dir": str(out / "figures")}


# ----------------------------------------------------------------------------- the committed file


def test_notebook_is_committed_without_outputs(committed: nbformat.NotebookNode) -> None:
    assert committed.nbformat == 4
    code_cells = [cell for cell in committed.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code_cells)
    assert committed.metadata["kernelspec"]["name"] == "python3"


def test_notebook_follows_the_course_skeleton(committed: nbformat.NotebookNode) -> None:
    assert committed.cells[0].source.startswith("# 01 · Transposed convolution")
    headings = [line for cell in committed.cells if cell.cell_type == "markdown" for line in cell.source.splitlines()]
    for heading in ("## Summary", "## Exercises", "### Solutions"):
        assert heading in headings
    assert "write_results(RESULTS_JSON" in committed.cells[-1].source


def test_one_parameters_cell_with_commented_all_caps_names(committed: nbformat.NotebookNode) -> None:
    tagged = [cell for cell in committed.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    names = parameter_names(tagged[0])
    assert {"SEED", "N_RANDOM_CHECKS", "LEARN_STEPS", "FIGURE_DIR", "RESULTS_JSON"} <= set(names)
    assert all(name.isupper() for name in names)
    assert all(" = " in line and "  # " in line for line in tagged[0].source.splitlines())
    assert set(papermill.inspect_notebook(str(NOTEBOOK))) == set(names)  # papermill can read every line


def test_every_checked_cell_has_expected_text(committed: nbformat.NotebookNode) -> None:
    ids = [cell.id for cell in marked_cells(committed)]
    expected = json.loads(EXPECTED_OUTPUTS.read_text())
    assert len(ids) == len(set(ids))
    assert set(ids) == set(expected), (
        "marked cells and tests/expected_outputs/01_transposed_convolution.json disagree; "
        "rewrite it with UPDATE_EXPECTED_OUTPUTS=1 and review the diff"
    )


# ----------------------------------------------------------------------------- the executed notebook


@pytest.mark.slow
def test_checked_cells_print_the_expected_text(executed: tuple[nbformat.NotebookNode, dict]) -> None:
    notebook, _ = executed
    printed = {cell.id: printed_text(cell) for cell in marked_cells(notebook)}
    if os.environ.get("UPDATE_EXPECTED_OUTPUTS") == "1":
        EXPECTED_OUTPUTS.parent.mkdir(parents=True, exist_ok=True)
        EXPECTED_OUTPUTS.write_text(json.dumps(printed, indent=2, ensure_ascii=False) + "\n")
        pytest.skip(f"rewrote {EXPECTED_OUTPUTS}: review its diff")
    expected = json.loads(EXPECTED_OUTPUTS.read_text())
    for cell_id, text in expected.items():
        assert printed.get(cell_id) == text, f"cell {cell_id} printed something else"


@pytest.mark.slow
def test_results_json_records_the_checks(executed: tuple[nbformat.NotebookNode, dict]) -> None:
    _, results = executed
    assert results["seed"] == 0 and results["learn_steps"] == SMALL_PARAMETERS["LEARN_STEPS"]
    # the full grid of stride x kernel x padding x output_padding, less the refused ones, plus the random cases
    assert results["n_cases_checked"] + results["n_refused_output_paddings"] == 90 + SMALL_PARAMETERS["N_RANDOM_CHECKS"]
    assert results["n_cases_checked"] >= 84
    assert results["max_abs_diff_keras"] < 1e-4
    assert results["max_abs_diff_gradient"] < 1e-4
    assert results["n_size_rows_checked"] == 14
    assert results["overlap_even_k3_s2"] is False and results["overlap_even_k4_s2"] is True
    assert results["unet_decoder_final_size"] == 112  # the course trains at 112 = 7 x 2**4


@pytest.mark.slow
def test_results_json_records_the_checkerboard(executed: tuple[nbformat.NotebookNode, dict]) -> None:
    _, results = executed
    for key in ("checkerboard_flat_untrained", "checkerboard_flat_trained"):
        assert results[key]["transposed"] > 1e-4
        assert results[key]["nearest"] < 1e-6 and results[key]["bilinear"] < 1e-6
    errors = results["checkerboard_error_trained"]
    assert errors["transposed"] > errors["bilinear"]


@pytest.mark.slow
def test_figures_are_saved_as_png(executed: tuple[nbformat.NotebookNode, dict]) -> None:
    _, results = executed
    assert results["figures"] == [f"{name}.png" for name in FIGURES]
    for name in FIGURES:
        assert (Path(results["figure_dir"]) / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_figures_are_shown_in_the_notebook(executed: tuple[nbformat.NotebookNode, dict]) -> None:
    notebook, _ = executed
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert len(images) == len(FIGURES)  # a Figure left as a cell's last value renders as a PNG
