"""Prediction at 101x101, flip test-time augmentation, and the submission CSV."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.errors import DataError
from helpers.model import build_unet
from helpers.predict import (
    available_path,
    predict_probabilities,
    read_submission,
    threshold_masks,
    write_submission,
)
from helpers.sizing import Sizing


class MirrorModel:
    """A stand-in model whose 'probability' is its input, so every step can be checked exactly."""

    input_shape = (None, 112, 112, 1)

    def predict(self, batch, batch_size=32, verbose=0):
        return batch


def random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 101, 101), dtype=np.float32)


def test_predictions_come_back_at_the_native_size_and_undo_the_padding():
    images = random_images(3)
    probabilities = predict_probabilities(MirrorModel(), images, Sizing("pad", 112))
    assert probabilities.shape == (3, 101, 101)
    np.testing.assert_allclose(probabilities, images)


def test_flip_tta_averages_the_mirrored_prediction_flipped_back():
    images = random_images(2)
    # An identity model is flip-equivariant, so TTA must leave its predictions unchanged.
    tta = predict_probabilities(MirrorModel(), images, Sizing("pad", 112), tta=True)
    np.testing.assert_allclose(tta, images, atol=1e-6)


def test_tta_on_a_real_model_is_the_mean_of_both_views():
    model = build_unet(input_size=112, base_filters=2, depth=2)
    images = random_images(2, seed=1)
    sizing = Sizing("pad", 112)
    plain = predict_probabilities(model, images, sizing)
    mirrored = predict_probabilities(model, images[:, :, ::-1], sizing)[:, :, ::-1]
    np.testing.assert_allclose(predict_probabilities(model, images, sizing, tta=True), (plain + mirrored) / 2,
                               atol=1e-5)


def test_wrong_image_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(N, 101, 101\)"):
        predict_probabilities(MirrorModel(), np.zeros((2, 128, 128), np.float32), Sizing("pad", 112))


def test_threshold_masks_and_its_range():
    probabilities = np.array([[[0.2, 0.6]]], dtype=np.float32)
    np.testing.assert_array_equal(threshold_masks(probabilities, 0.5), [[[0.0, 1.0]]])
    with pytest.raises(ValueError, match="THRESHOLD"):
        threshold_masks(probabilities, 1.5)


def test_submission_decodes_back_to_the_thresholded_predictions(tmp_path):
    probabilities = random_images(5, seed=2)
    probabilities[0] = 0.0  # an image with no salt predicted gets an empty rle
    masks = threshold_masks(probabilities, 0.7)
    ids = [f"id{i:03d}" for i in range(5)]
    path = write_submission(ids, masks, tmp_path / "submission.csv")
    decoded = read_submission(path)
    assert list(decoded) == ids
    for image_id, mask in zip(ids, masks):
        np.testing.assert_array_equal(decoded[image_id], mask)
    assert path.read_text().splitlines()[1] == "id000,"


def test_submission_is_never_overwritten(tmp_path):
    path = tmp_path / "submission.csv"
    path.write_text("precious\n")
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_submission(["a"], np.zeros((1, 101, 101), np.float32), path)
    assert path.read_text() == "precious\n"
    assert available_path(path) == tmp_path / "submission-2.csv"


def test_submission_rejects_mismatched_or_duplicate_ids(tmp_path):
    masks = np.zeros((2, 101, 101), np.float32)
    with pytest.raises(ValueError, match="2 masks"):
        write_submission(["a"], masks, tmp_path / "a.csv")
    with pytest.raises(ValueError, match="unique"):
        write_submission(["a", "a"], masks, tmp_path / "b.csv")


def test_reading_a_broken_submission_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("id,rle_mask\na,1 2\na,3 4\n")
    with pytest.raises(ValueError, match=r"broken.csv, line 3: id 'a' appears more than once"):
        read_submission(path)
    path.write_text("name,pixels\n")
    with pytest.raises(ValueError, match="header"):
        read_submission(path)


def test_reading_a_submission_that_is_not_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"id,rle_mask\na,1 2\nb\xe9,3 4\n")
    with pytest.raises(DataError, match=r"latin1\.csv, line 3, byte 2: byte 0xe9 is not UTF-8 text.*re-save it"):
        read_submission(path)


def test_reading_a_missing_or_damaged_submission_is_one_data_error(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.csv does not exist"):
        read_submission(tmp_path / "nowhere.csv")
    with pytest.raises(DataError, match=r"cannot be read as a CSV file"):
        read_submission(tmp_path)  # a folder
    path = tmp_path / "odd.csv"
    path.write_text("id,rle_mask\na,1 2 3\n")
    with pytest.raises(DataError, match=r"odd\.csv, line 2: rle_mask of id 'a' is malformed"):
        read_submission(path)


def test_a_submission_with_a_byte_order_mark_is_read(tmp_path):
    path = write_submission(["a"], np.ones((1, 101, 101), np.float32), tmp_path / "sub.csv")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_submission(path)["a"].all()
