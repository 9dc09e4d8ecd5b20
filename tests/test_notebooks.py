"""Every notebook runs end to end with small parameters, on the built-in data and on the real files.

Notebooks 04, 05 and 06 share one run folder, in that order, like the course runner does. Each notebook
records its key figures in RESULTS_JSON; the assertions read them.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from conftest import read_only

from helpers.course import NOTEBOOK_DIR, notebook_parameters, run_notebook

pytestmark = pytest.mark.slow

# A two-level U-Net with 4 base filters on 32 x 32 resized inputs: seconds per epoch on a CPU.
TINY_MODEL = {"IMG_SIZE": 32, "SIZING": "resize", "BASE_FILTERS": 4, "DEPTH": 2}
TINY_TRAINING = {"EPOCHS": 2, "FINETUNE_EPOCHS": 1, "BATCH_SIZE": 16, "N_IMAGES": 96, **TINY_MODEL}
FEW_SHOWN = {"N_SHOW": 2}


def execute(name: str, parameters: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Run notebooks/<name> with the parameters it declares; return the results it recorded."""
    notebook = NOTEBOOK_DIR / name
    if not notebook.exists():
        pytest.skip(f"{name} is not written yet")
    own = notebook_parameters(notebook, {"FIGURE_DIR": str(out_dir / "figures"), **parameters}, out_dir)
    result = run_notebook(notebook, out_dir / "notebooks" / name, own)
    assert result.ok, f"{result.error}\n(executed copy: {result.output})"
    return json.loads((out_dir / "results" / f"{notebook.stem}.json").read_text())


def run_training_chain(data_dir: Path, out_dir: Path, n_test: int, read_only_run: bool = False,
                       **training: Any) -> dict[str, dict[str, Any]]:
    """Notebooks 04 -> 05 -> 06 on one run folder (read-only for 05 and 06 if asked); their results by number."""
    run_dir = out_dir / "run"
    shared = {"DATA_DIR": str(data_dir), "RUN_DIR": str(run_dir)}
    chain = {"04": execute("04_training.ipynb", {**shared, **TINY_TRAINING, **training}, out_dir)}
    with read_only(run_dir) if read_only_run else nullcontext():
        chain["05"] = execute("05_evaluation.ipynb", {**shared, **FEW_SHOWN}, out_dir)
        chain["06"] = execute("06_inference.ipynb", {**shared, **FEW_SHOWN, "N_IMAGES": n_test}, out_dir)
    return chain


@pytest.fixture(scope="module")
def synthetic_chain(synthetic_data_dir, tmp_path_factory) -> dict[str, dict[str, Any]]:
    # Evaluated and predicted from a read-only run folder, as a shared or mounted one can be.
    return run_training_chain(synthetic_data_dir, tmp_path_factory.mktemp("chain-synthetic"), n_test=16,
                              read_only_run=True)


@pytest.fixture(scope="module")
def real_chain(real_data_dir, tmp_path_factory) -> dict[str, dict[str, Any]]:
    # Padding (the default sizing) to 112, the smallest size it allows: the resized 32 x 32 is covered above.
    return run_training_chain(real_data_dir, tmp_path_factory.mktemp("chain-real"), n_test=16, IMG_SIZE=112,
                              SIZING="pad")


def check_data_exploration(results: dict[str, Any], n_images: int) -> None:
    """What notebook 02 must have found on any data set."""
    assert results["n_images"] == n_images
    assert 0.0 <= results["share_empty"] <= 1.0
    assert results["all_empty_score"] == pytest.approx(results["share_empty"])
    assert results["n_train"] + results["n_val"] == n_images and results["n_val"] > 0
    assert results["rle_tiny"] == "4 2 7 1" and results["rle_round_trip_ok"]


def check_training_chain(chain: dict[str, dict[str, Any]], n_test: int) -> None:
    """Loss finite and falling, scores in [0, 1], same split in 04 and 05, a complete decodable submission."""
    training, evaluation, inference = chain["04"], chain["05"], chain["06"]
    assert training["epochs_run"] == 2 and all(math.isfinite(x) for x in training["losses"] + training["val_losses"])
    assert training["losses"][-1] < training["losses"][0]
    # The plain compile-and-fit took its first steps; the run kept snapshots before training and after each epoch.
    assert training["first_look_losses"] and all(math.isfinite(x) for x in training["first_look_losses"])
    assert training["snapshot_epochs"] == [0, 1, 2]
    assert training["recipe"]["lr_schedule"] == "cosine" and training["recipe"]["batch_norm_momentum"] == 0.9
    assert 0.0 < training["no_salt_score"] < 1.0
    assert training["lovasz_pixels_pushed_empty"] == 1 < training["symmetric_pixels_pushed_empty"]
    assert training["dice_iou_error"] < 1e-12
    for key in ("val_score", "val_score_tta"):
        assert 0.0 <= training[key] <= 1.0
    assert (evaluation["n_train"], evaluation["n_val"]) == (training["n_train"], training["n_val"])
    # Notebooks 05 and 06 evaluate the second stage, fine-tuned from the first in its own folder.
    assert training["finetune_epochs_run"] == 1 and 0.0 <= training["finetune_val_score"] <= 1.0
    assert training["final_val_score"] == max(training["val_score"], training["finetune_val_score"])
    tuned = Path(training["run_dir"]) / "fine_tuned"
    assert Path(training["final_run_dir"]) == (tuned if training["finetune_val_score"] >= training["val_score"]
                                               else Path(training["run_dir"]))
    assert evaluation["val_score"] == pytest.approx(training["final_val_score"], abs=0.02)
    for key in ("val_score", "val_score_tta", "val_score_threshold", "train_score"):
        assert 0.0 <= evaluation[key] <= 1.0, key
    assert evaluation["val_score_threshold"] >= evaluation["val_score_tta"] - 1e-9
    assert 0.0 < evaluation["threshold"] < 1.0
    assert math.isfinite(evaluation["train_loss"]) and math.isfinite(evaluation["val_loss"])
    assert inference["n_images"] == inference["n_rows"] == n_test
    assert inference["ids_complete"] and inference["masks_match"]
    assert inference["projected_seconds_18000"] == pytest.approx(18_000 / inference["sections_per_second"])
    assert inference["threshold"] == pytest.approx(training["final_threshold"])
    from helpers.predict import read_submission

    assert len(read_submission(inference["submission_csv"])) == n_test


def test_data_exploration_on_builtin_data(synthetic_data_dir, tmp_path):
    parameters = {"DATA_DIR": str(synthetic_data_dir), "N_IMAGES": 96, **FEW_SHOWN}
    results = execute("02_data_exploration.ipynb", parameters, tmp_path)
    check_data_exploration(results, 96)
    assert results["is_builtin"]


def test_data_exploration_on_real_data(real_data_dir, tmp_path):
    results = execute("02_data_exploration.ipynb", {"DATA_DIR": str(real_data_dir), "N_IMAGES": 96, **FEW_SHOWN},
                      tmp_path)
    check_data_exploration(results, 96)
    assert not results["is_builtin"] and len(results["compared_with"]) == 2  # compared with generated sections


def test_unet_model_notebook_counts_what_keras_counts(tmp_path):
    results = execute("03_unet_model.ipynb", {"IMG_SIZE": 32, "BASE_FILTERS": 4, "DEPTH": 2}, tmp_path)
    # Imported after the run: the runner sets TensorFlow's environment before TensorFlow loads in this process.
    from helpers.model import build_unet, count_parameters, receptive_field

    assert results["parameters"] == count_parameters(build_unet(32, base_filters=4, depth=2))
    assert results["parameters_single_conv"] < results["parameters"]
    assert results["receptive_field"] == results["receptive_field_measured"] == receptive_field(2)
    assert results["bottleneck_shape"] == [8, 8, 16]
    assert results["same_as_helper"] is True  # the notebook's plain Keras network is build_unet
    # The effective field piles up near the pixel: the central square a quarter as wide as the theoretical
    # field (9 x 9 of 32 x 32 here, 8 % of the area) holds far more than its share of the gradient.
    assert 0.3 < results["effective_field_fraction"] <= 1.0
    assert 0 <= results["effective_field_radius_50"] < results["effective_field_radius_90"] <= 16
    assert results["fused_batch_norm_max_difference"] < 1e-4


def test_training_evaluation_inference_on_builtin_data(synthetic_chain):
    check_training_chain(synthetic_chain, n_test=16)
    # The run folder was read-only: the submission went beside the figures, the figures to FIGURE_DIR only.
    run_dir = Path(synthetic_chain["04"]["run_dir"])
    assert run_dir not in Path(synthetic_chain["06"]["submission_csv"]).parents
    assert not list((Path(synthetic_chain["04"]["final_run_dir"]) / "figures").glob("0[56]_*.png"))


def test_training_evaluation_inference_on_real_data(real_chain):
    check_training_chain(real_chain, n_test=16)
    final_run_dir = Path(real_chain["04"]["final_run_dir"])
    assert final_run_dir in Path(real_chain["06"]["submission_csv"]).parents
    assert (final_run_dir / "figures" / "05_threshold_sweep.png").is_file()


def test_a_bad_parameter_fails_in_the_first_cell_after_the_parameters(tmp_path):
    notebook = NOTEBOOK_DIR / "04_training.ipynb"
    if not notebook.exists():
        pytest.skip("04_training.ipynb is not written yet")
    own = notebook_parameters(notebook, {"IMG_SIZE": 100, "RUN_DIR": str(tmp_path / "run")}, tmp_path)
    result = run_notebook(notebook, tmp_path / "04.ipynb", own)
    assert not result.ok
    assert "IMG_SIZE must be a positive multiple of 16" in result.error
    assert "starting 'check_parameters(" in result.error
    assert not (tmp_path / "run").exists()


def check_appendix(results: dict[str, Any]) -> None:
    """What appendix 08 must have found on any run: a complete folder, the three statuses, a real resume."""
    assert results["files"] >= 7 and results["completed_epochs"] >= 1
    statuses = results["statuses"]
    assert statuses["a folder that does not exist yet"] == "new run"
    assert statuses["an interrupted run"] == "resume after epoch 1"
    assert statuses["a finished run"].startswith("refused:")
    assert results["resumed_epochs"] == [1, 2] and results["loss_scaling"]
    assert results["fused_batch_norm_difference"] < 1e-5


def test_appendix_takes_its_own_small_run_apart_when_given_none(synthetic_data_dir, tmp_path):
    results = execute("08_appendix_machinery.ipynb", {"DATA_DIR": str(synthetic_data_dir), "RUN_DIR": ""}, tmp_path)
    check_appendix(results)
    assert not results["read_run_of_04"] and not results["has_second_stage"]
    assert not Path(results["run_dir"]).exists()  # the small runs lived in a temporary folder, removed at the end


def test_appendix_reads_the_run_of_notebook_04_without_writing_to_it(synthetic_chain, synthetic_data_dir, tmp_path):
    run_dir = Path(synthetic_chain["04"]["run_dir"])
    with read_only(run_dir):
        results = execute("08_appendix_machinery.ipynb", {"DATA_DIR": str(synthetic_data_dir),
                                                          "RUN_DIR": str(run_dir)}, tmp_path)
    check_appendix(results)
    assert results["read_run_of_04"] and results["has_second_stage"]
    assert Path(results["run_dir"]) == run_dir and results["completed_epochs"] == synthetic_chain["04"]["epochs_run"]


def test_going_further_answers_each_question_with_paired_intervals(synthetic_data_dir, tmp_path):
    parameters = {"DATA_DIR": str(synthetic_data_dir), "QUESTIONS": "skips,finetune", "SEEDS": 2, "EPOCHS": 2,
                  "FINETUNE_EPOCHS": 1, "N_IMAGES": 64,
                  "IMG_SIZE": 32, "BASE_FILTERS": 4}
    results = execute("07_going_further.ipynb", parameters, tmp_path)
    variants = {row["name"]: row for row in results["variants"]}
    assert set(variants) == {"no skip connections", "fine-tuned with binary cross-entropy",
                             "fine-tuned with the Lovasz hinge", "Lovasz hinge rather than BCE for fine-tuning"}
    assert variants["Lovasz hinge rather than BCE for fine-tuning"]["compared_with"] == (
        "fine-tuned with binary cross-entropy")
    n_with, n_without = results["sections_with_salt"], results["sections_without_salt"]
    assert n_with + n_without == results["n_val"] and n_with > 0 and n_without > 0
    for row in variants.values():
        assert set(row) == {"name", "mean", "difference", "low", "high", "seeds", "resolved", "compared_with",
                            "by_section_kind"}
        assert row["seeds"] == 2 and row["low"] <= row["difference"] <= row["high"]
        assert row["resolved"] == (row["low"] > 0 or row["high"] < 0) and 0.0 <= row["mean"] <= 1.0
        # The same comparison on each kind of section; the overall difference is their weighted sum.
        kinds = row["by_section_kind"]
        assert set(kinds) == {"without salt", "with salt"}
        assert all(kind["low"] <= kind["difference"] <= kind["high"] and kind["compared_with"] == row["compared_with"]
                   for kind in kinds.values())
        weighted = (kinds["without salt"]["difference"] * n_without + kinds["with salt"]["difference"] * n_with)
        assert weighted / results["n_val"] == pytest.approx(row["difference"])
    # Whether the baseline learned is judged against predicting no salt, the trivial answer, on the same sections.
    assert 0.0 < results["no_salt_score"] < 1.0
    assert results["baseline_learned"] is (results["baseline_vs_no_salt"]["low"] > 0)
    assert len(results["run_scores"]["baseline"]) == 2 and results["seeds"] == [0, 1]
