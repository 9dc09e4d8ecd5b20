"""Reading Kaggle-layout folders (tiny ones built here, the built-in one, and the real one)."""

from __future__ import annotations

import re
import struct
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import NATIVE_SIZE
from helpers.competition_csv import read_depths
from helpers.coverage import coverage_class, salt_coverage, stratified_split
from helpers.data import (
    SaltDataset,
    load_test,
    load_train,
    read_image,
    read_mask,
    read_rle_csv,
    resolve_data_dir,
)
from helpers.errors import DataError
from helpers.rle import rle_encode

N_TINY = 6
SIZE = NATIVE_SIZE


# ----------------------------------------------------------------------------- building tiny folders


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write an array as PNG (uint8 gray, uint16 gray, or (H, W, 3) uint8 RGB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_png16(path: Path, pixels: np.ndarray) -> None:
    """Write a 16-bit grayscale (H, W) or RGB (H, W, 3) PNG by hand (Pillow cannot write 16-bit colour)."""
    pixels = np.asarray(pixels, dtype=">u2")
    height, width = pixels.shape[:2]
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2 if pixels.ndim == 3 else 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)


def tiny_pixels(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random 8-bit section and a binary mask (half of them empty)."""
    rng = np.random.default_rng(seed)
    gray = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), bool)
    if seed % 2:
        mask[: 10 * seed, 5 : 40 + seed] = True
    return gray, mask


def make_tiny_dir(root: Path, n: int = N_TINY) -> Path:
    """A Kaggle-layout folder with n labelled pairs (RGB images, 16- and 8-bit masks) and 3 test images."""
    rles, depths = [], []
    for i in range(n):
        id_ = f"id{i:03d}"
        gray, mask = tiny_pixels(i)
        write_png(root / "train" / "images" / f"{id_}.png", np.stack([gray] * 3, axis=-1))
        stored = (mask * 65535).astype(np.uint16) if i % 3 else (mask * 255).astype(np.uint8)
        write_png(root / "train" / "masks" / f"{id_}.png", stored)
        rles.append(f"{id_},{rle_encode(mask)}")
        depths.append(f"{id_},{100 + i}")
    for i in range(3):
        write_png(root / "test" / "images" / f"test{i}.png", tiny_pixels(100 + i)[0])
        depths.append(f"test{i},{500 + i}")
    (root / "train.csv").write_text("id,rle_mask\n" + "\n".join(rles) + "\n")
    (root / "depths.csv").write_text("id,z\n" + "\n".join(depths) + "\n")
    return root


@pytest.fixture()
def tiny_dir(tmp_path: Path) -> Path:
    return make_tiny_dir(tmp_path / "salt")


def snapshot(folder: Path) -> set[tuple[str, int, int]]:
    """(path, mtime, size) of everything under a folder."""
    return {(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


# ----------------------------------------------------------------------------- loading a good folder


def test_load_train_reads_every_pair(tiny_dir: Path) -> None:
    data = load_train(tiny_dir, progress=False)
    assert data.ids == [f"id{i:03d}" for i in range(N_TINY)]
    assert data.images.shape == data.masks.shape == (N_TINY, SIZE, SIZE)
    assert data.images.dtype == data.masks.dtype == np.float32
    for i in range(N_TINY):
        gray, mask = tiny_pixels(i)
        np.testing.assert_allclose(data.images[i], gray / 255.0, atol=1e-6)
        np.testing.assert_array_equal(data.masks[i], mask)
    np.testing.assert_array_equal(data.depths, np.arange(100, 100 + N_TINY, dtype=np.float32))


def test_load_train_first_n_in_sorted_order(tiny_dir: Path) -> None:
    data = load_train(tiny_dir, n_images=2, progress=False)
    assert data.ids == ["id000", "id001"] and len(data) == 2
    assert len(load_train(tiny_dir, n_images=100, progress=False)) == N_TINY


@pytest.mark.parametrize("n_images", [-1, 1.5, True])
def test_load_train_rejects_bad_n_images(tiny_dir: Path, n_images: object) -> None:
    with pytest.raises(ValueError, match="n_images"):
        load_train(tiny_dir, n_images=n_images, progress=False)  # type: ignore[arg-type]


def test_load_train_shows_progress(tiny_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_train(tiny_dir, progress=True)
    err = capsys.readouterr().err
    # Not a terminal here (as in a log file): one line per set, no carriage-return bar.
    assert f"train images: {N_TINY} loaded" in err and "\r" not in err


def test_load_train_without_csv_files(tiny_dir: Path) -> None:
    (tiny_dir / "train.csv").unlink()
    (tiny_dir / "depths.csv").unlink()
    data = load_train(tiny_dir, progress=False)
    assert len(data) == N_TINY and np.isnan(data.depths).all()


def test_load_test_from_data_dir_and_from_png_folder(tiny_dir: Path) -> None:
    from_data_dir = load_test(tiny_dir, progress=False)
    assert from_data_dir.ids == ["test0", "test1", "test2"] and from_data_dir.masks is None
    np.testing.assert_array_equal(from_data_dir.depths, [500, 501, 502])
    from_folder = load_test(tiny_dir / "test" / "images", n_images=2, progress=False)
    assert from_folder.ids == ["test0", "test1"] and np.isnan(from_folder.depths).all()
    np.testing.assert_array_equal(from_folder.images, from_data_dir.images[:2])
    np.testing.assert_allclose(from_folder.images[0], tiny_pixels(100)[0] / 255.0, atol=1e-6)


def test_loading_never_touches_the_folder(tiny_dir: Path) -> None:
    before = snapshot(tiny_dir)
    load_train(tiny_dir, progress=False)
    load_test(tiny_dir, progress=False)
    read_depths(tiny_dir)
    read_rle_csv(tiny_dir / "train.csv")
    assert snapshot(tiny_dir) == before


# ----------------------------------------------------------------------------- single files


def test_read_image_formats(tmp_path: Path) -> None:
    gray = tiny_pixels(0)[0]
    write_png(tmp_path / "gray.png", gray)
    write_png(tmp_path / "rgb.png", np.stack([gray] * 3, axis=-1))
    write_png(tmp_path / "gray16.png", gray.astype(np.uint16) * 257)
    for name in ("gray.png", "rgb.png", "gray16.png"):
        image = read_image(tmp_path / name)
        assert image.dtype == np.float32 and image.shape == (SIZE, SIZE)
        np.testing.assert_allclose(image, gray / 255.0, atol=1e-6, err_msg=name)


def test_read_image_rejects_colour(tmp_path: Path) -> None:
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    rgb[..., 0] = 200
    write_png(tmp_path / "colour.png", rgb)
    with pytest.raises(DataError, match=r"colour\.png.*different R, G and B"):
        read_image(tmp_path / "colour.png")


def test_read_mask_formats(tmp_path: Path) -> None:
    mask = tiny_pixels(3)[1]
    write_png(tmp_path / "m16.png", (mask * 65535).astype(np.uint16))
    write_png(tmp_path / "m8.png", (mask * 255).astype(np.uint8))
    write_png(tmp_path / "empty.png", np.zeros((SIZE, SIZE), np.uint8))
    for name in ("m16.png", "m8.png"):
        decoded = read_mask(tmp_path / name)
        assert decoded.dtype == np.float32
        np.testing.assert_array_equal(decoded, mask, err_msg=name)
    assert not read_mask(tmp_path / "empty.png").any()


def test_read_mask_rejects_non_binary(tmp_path: Path) -> None:
    write_png(tmp_path / "gray.png", tiny_pixels(0)[0])
    with pytest.raises(DataError, match=r"gray\.png.*not binary"):
        read_mask(tmp_path / "gray.png")


def test_16_bit_gray_and_colour_images_are_read_on_the_16_bit_scale(tmp_path: Path) -> None:
    gray = tiny_pixels(0)[0]
    write_png16(tmp_path / "gray16.png", gray.astype(np.uint16) * 257)
    write_png16(tmp_path / "rgb16.png", np.stack([gray.astype(np.uint16) * 257] * 3, axis=-1))
    write_png16(tmp_path / "black16.png", np.zeros((SIZE, SIZE), np.uint16))  # 0 is 0 on any scale
    np.testing.assert_allclose(read_image(tmp_path / "gray16.png"), gray / 255.0, atol=1e-6)
    # Pillow keeps the high byte of 16-bit colour: exact to 8 bits, which is what these hold.
    np.testing.assert_allclose(read_image(tmp_path / "rgb16.png"), gray / 255.0, atol=1e-6)
    assert not read_image(tmp_path / "black16.png").any()


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_image_holding_8_bit_values_is_refused_not_read_near_black(tmp_path: Path, channels: int) -> None:
    gray = tiny_pixels(0)[0].astype(np.uint16)  # values 0..255 in a 16-bit file
    write_png16(tmp_path / "dark16.png", gray if channels == 1 else np.stack([gray] * 3, axis=-1))
    with pytest.raises(DataError, match=r"dark16\.png: 16-bit image whose values all lie in 0\.\.255.*re-save it as "
                                        r"an 8-bit PNG.*or as a real 16-bit PNG"):
        read_image(tmp_path / "dark16.png")


def test_16_bit_masks_with_small_values_are_still_binary_masks(tmp_path: Path) -> None:
    mask = tiny_pixels(3)[1]
    write_png16(tmp_path / "m01.png", mask.astype(np.uint16))  # salt stored as 1 in a 16-bit mask
    np.testing.assert_array_equal(read_mask(tmp_path / "m01.png"), mask)


# ----------------------------------------------------------------------------- bad folders


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere.*does not exist"):
        load_train(tmp_path / "nowhere", progress=False)
    with pytest.raises(DataError, match=r"nowhere.*does not exist"):
        load_test(tmp_path / "nowhere", progress=False)


def test_missing_train_images(tmp_path: Path) -> None:
    empty_root = tmp_path / "no_train"
    empty_root.mkdir()
    with pytest.raises(DataError, match=r"train/images does not exist.*Kaggle"):
        load_train(empty_root, progress=False)


def test_missing_masks_folder(tiny_dir: Path) -> None:
    for path in (tiny_dir / "train" / "masks").iterdir():
        path.unlink()
    (tiny_dir / "train" / "masks").rmdir()
    with pytest.raises(DataError, match=r"train/masks does not exist"):
        load_train(tiny_dir, progress=False)


def test_image_without_mask(tiny_dir: Path) -> None:
    (tiny_dir / "train" / "masks" / "id002.png").unlink()
    with pytest.raises(DataError, match=r"1 images in .*train/images have no counterpart.*id002"):
        load_train(tiny_dir, progress=False)


def test_mask_without_image(tiny_dir: Path) -> None:
    (tiny_dir / "train" / "images" / "id004.png").unlink()
    with pytest.raises(DataError, match=r"1 masks in .*train/masks have no counterpart.*id004"):
        load_train(tiny_dir, progress=False)


def test_png_that_does_not_decode(tiny_dir: Path) -> None:
    (tiny_dir / "train" / "images" / "id001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match=r"id001\.png: cannot be decoded"):
        load_train(tiny_dir, progress=False)


def test_image_of_wrong_size(tiny_dir: Path) -> None:
    write_png(tiny_dir / "train" / "images" / "id003.png", np.zeros((100, 101), np.uint8))
    with pytest.raises(DataError, match=r"id003\.png: image is 100x101; expected 101x101"):
        load_train(tiny_dir, progress=False)


def test_mask_of_wrong_size(tiny_dir: Path) -> None:
    write_png(tiny_dir / "train" / "masks" / "id003.png", np.zeros((128, 128), np.uint16))
    with pytest.raises(DataError, match=r"id003\.png: mask is 128x128"):
        load_train(tiny_dir, progress=False)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "masks").mkdir()
    (tmp_path / "train" / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"train/images contains no \.png files"):
        load_train(tmp_path, progress=False)
    with pytest.raises(DataError, match=r"contains no \.png files"):
        load_test(tmp_path / "train" / "masks", progress=False)


def test_folder_mixing_8_and_16_bit_images_gives_one_scale(tiny_dir: Path) -> None:
    gray = tiny_pixels(2)[0]
    write_png16(tiny_dir / "train" / "images" / "id002.png", gray.astype(np.uint16) * 257)
    write_png(tiny_dir / "train" / "images" / "id003.png", tiny_pixels(3)[0])  # 8-bit gray beside 8-bit RGB
    data = load_train(tiny_dir, progress=False)
    for i in range(N_TINY):
        np.testing.assert_allclose(data.images[i], tiny_pixels(i)[0] / 255.0, atol=1e-6, err_msg=f"id{i:03d}")


def test_folder_mixing_8_bit_and_ambiguous_16_bit_images_names_each_one(tiny_dir: Path) -> None:
    for id_ in ("id001", "id004"):
        write_png16(tiny_dir / "train" / "images" / f"{id_}.png", tiny_pixels(1)[0].astype(np.uint16))
    write_png16(tiny_dir / "test" / "images" / "test2.png", tiny_pixels(5)[0].astype(np.uint16))
    with pytest.raises(DataError, match=r"2 of the 6 train images cannot be used: .*id001\.png: 16-bit image whose "
                                        r"values all lie in 0\.\.255.*also .*id004\.png: 16-bit"):
        load_train(tiny_dir, progress=False)
    with pytest.raises(DataError, match=r"test2\.png: 16-bit image whose values all lie in 0\.\.255"):
        load_test(tiny_dir, progress=False)


def test_upper_and_mixed_case_png_extensions_are_read(tiny_dir: Path) -> None:
    renames = {"train/images/id001.png": "id001.PNG", "train/masks/id001.png": "id001.Png",
               "train/masks/id002.png": "id002.PNG", "test/images/test1.png": "test1.PNG"}
    for old, new in renames.items():
        (tiny_dir / old).rename((tiny_dir / old).with_name(new))
    data = load_train(tiny_dir, progress=False)  # train.csv is checked against the masks too
    assert data.ids == [f"id{i:03d}" for i in range(N_TINY)]
    for i in (1, 2):
        np.testing.assert_allclose(data.images[i], tiny_pixels(i)[0] / 255.0, atol=1e-6)
        np.testing.assert_array_equal(data.masks[i], tiny_pixels(i)[1])
    for source in (tiny_dir, tiny_dir / "test" / "images"):
        test = load_test(source, progress=False)
        assert test.ids == ["test0", "test1", "test2"]
        np.testing.assert_allclose(test.images[1], tiny_pixels(101)[0] / 255.0, atol=1e-6)


def test_one_id_with_two_png_files_is_refused(tiny_dir: Path) -> None:
    folder = tiny_dir / "train" / "images"
    write_png(folder / "id001.PNG", np.zeros((SIZE, SIZE), np.uint8))
    if len(list(folder.glob("id001.*"))) != 2:
        pytest.skip("this file system does not tell upper from lower case")
    with pytest.raises(DataError, match=r"train/images: 1 id\(s\) have two files .*: id001\.PNG and id001\.png; "
                                        r"keep one file per id"):
        load_train(tiny_dir, progress=False)


def test_a_folder_that_cannot_be_listed_is_named(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    masks = tiny_dir / "train" / "masks"
    real_iterdir = Path.iterdir

    def iterdir(self: Path):  # as for a folder without read permission (root ignores real permissions)
        if self == masks:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(DataError, match=r"train/masks: cannot be listed \(Permission denied\)"):
        load_train(tiny_dir, progress=False)


def test_damage_in_a_generated_synthetic_set_says_to_delete_it(tmp_path: Path) -> None:
    from helpers.synthetic import write_synthetic_dataset

    out = write_synthetic_dataset(tmp_path / "salt", n_train=3, n_test=1, progress=False)
    broken = sorted((out / "train" / "images").glob("*.png"))[1]
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(DataError, match=rf"{broken.name}: cannot be decoded.*is a generated synthetic data set.*"
                                        "delete that folder and run again"):
        load_train(out, progress=False)


def test_train_csv_missing_id(tiny_dir: Path) -> None:
    lines = (tiny_dir / "train.csv").read_text().splitlines()
    (tiny_dir / "train.csv").write_text("\n".join(line for line in lines if not line.startswith("id003")))
    with pytest.raises(DataError, match=r"mask files have no counterpart in rows of .*train\.csv: id003"):
        load_train(tiny_dir, progress=False)


def test_train_csv_extra_id(tiny_dir: Path) -> None:
    with open(tiny_dir / "train.csv", "a") as handle:
        handle.write("ghost,1 5\n")
    with pytest.raises(DataError, match=r"rows of .*train\.csv have no counterpart in mask files: ghost"):
        load_train(tiny_dir, progress=False)


def test_train_csv_rle_disagrees_with_mask(tiny_dir: Path) -> None:
    text = (tiny_dir / "train.csv").read_text().replace("id000,\n", "id000,1 3\n")
    (tiny_dir / "train.csv").write_text(text)
    with pytest.raises(DataError, match=r"train\.csv: rle_mask of id 'id000' disagrees with its mask file in 3 pixels"):
        load_train(tiny_dir, progress=False)


def test_train_csv_malformed_rle(tiny_dir: Path) -> None:
    text = (tiny_dir / "train.csv").read_text().replace("id000,\n", "id000,1 2 3\n")
    (tiny_dir / "train.csv").write_text(text)
    with pytest.raises(DataError, match=r"train\.csv: rle_mask of id 'id000' is malformed.*odd number"):
        load_train(tiny_dir, progress=False)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("id001,deep", r"line 3: depth 'deep' for id 'id001' is not a number"),
        ("id001", r"line 3: expected 2 fields"),
        ("id001,1,2", r"line 3: expected 2 fields"),
        ("id001,nan", r"line 3: depth 'nan' for id 'id001' is not finite"),
        ("id000,7", r"line 3: id 'id000' appears more than once"),
    ],
)
def test_depths_csv_with_bad_row(tiny_dir: Path, bad_line: str, message: str) -> None:
    lines = (tiny_dir / "depths.csv").read_text().splitlines()
    lines[2] = bad_line
    (tiny_dir / "depths.csv").write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"depths\.csv, " + message):
        load_train(tiny_dir, progress=False)


@pytest.mark.parametrize("name", ["train.csv", "depths.csv"])
def test_csv_with_a_byte_that_is_not_utf8_names_file_and_line(tiny_dir: Path, name: str) -> None:
    lines = (tiny_dir / name).read_bytes().split(b"\n")
    lines[2] = lines[2][:3] + b"\xe9" + lines[2][3:]  # e.g. a Latin-1 e-acute in an id
    (tiny_dir / name).write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match=rf"{name}, line 3, byte 4: byte 0xe9 is not UTF-8 text.*re-save it as UTF-8"):
        load_train(tiny_dir, progress=False)


def test_csv_with_a_byte_order_mark_is_read(tiny_dir: Path) -> None:
    for name in ("train.csv", "depths.csv"):  # as Excel writes 'CSV UTF-8'
        (tiny_dir / name).write_bytes(b"\xef\xbb\xbf" + (tiny_dir / name).read_bytes())
    data = load_train(tiny_dir, progress=False)
    assert len(data) == N_TINY and np.isfinite(data.depths).all()


def test_read_csv_files(tiny_dir: Path) -> None:
    rles = read_rle_csv(tiny_dir / "train.csv")
    assert list(rles) == [f"id{i:03d}" for i in range(N_TINY)] and rles["id000"] == ""
    assert rles["id001"] == rle_encode(tiny_pixels(1)[1])
    depths = read_depths(tiny_dir)
    assert depths["id002"] == 102.0 and depths["test1"] == 501.0
    with pytest.raises(DataError, match=r"missing\.csv does not exist"):
        read_rle_csv(tiny_dir / "missing.csv")


# ----------------------------------------------------------------------------- resolving the folder


def test_resolve_explicit_folder(tiny_dir: Path) -> None:
    assert resolve_data_dir(tiny_dir) == tiny_dir
    assert resolve_data_dir(str(tiny_dir)) == tiny_dir


def test_resolve_explicit_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing_data does not exist.*train/images/ID\.png"):
        resolve_data_dir(tmp_path / "missing_data")


def test_resolve_folder_with_wrong_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"has neither train/images nor test/images"):
        resolve_data_dir(tmp_path)


def test_resolve_a_folder_one_level_off_suggests_the_data_folder(tiny_dir: Path) -> None:
    with pytest.raises(DataError, match=rf"train has neither .*; did you mean {re.escape(str(tiny_dir))}\?"):
        resolve_data_dir(tiny_dir / "train")  # one level too deep
    with pytest.raises(DataError, match=rf"did you mean {re.escape(str(tiny_dir))}\?"):
        resolve_data_dir(tiny_dir.parent)  # one level too high, as the cache root instead of the set in it


def test_resolve_uses_environment(tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALT_DATA_DIR", str(tiny_dir))
    assert resolve_data_dir("") == tiny_dir
    assert resolve_data_dir(None) == tiny_dir
    monkeypatch.setenv("SALT_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataError, match=r"\$SALT_DATA_DIR .*gone does not exist"):
        resolve_data_dir(None)


def test_resolve_falls_back_to_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALT_DATA_DIR", raising=False)
    fake = types.ModuleType("helpers.synthetic")
    fake.builtin_data_dir = lambda: tmp_path / "builtin"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "helpers.synthetic", fake)
    assert resolve_data_dir("") == tmp_path / "builtin"


# ----------------------------------------------------------------------------- the data set object


def test_salt_dataset_len_and_subset() -> None:
    data = SaltDataset(
        ids=["a", "b", "c"],
        images=np.arange(3, dtype=np.float32)[:, None, None] * np.ones((3, 2, 2), np.float32),
        masks=np.zeros((3, 2, 2), np.float32),
        depths=np.array([1, 2, np.nan], np.float32),
    )
    assert len(data) == 3
    part = data.subset([2, 0])
    assert part.ids == ["c", "a"] and part.images[:, 0, 0].tolist() == [2, 0]
    assert np.isnan(part.depths[0]) and part.masks is not None and part.masks.shape == (2, 2, 2)
    assert data.subset(np.array([False, True, False])).ids == ["b"]


def test_salt_dataset_without_masks_and_wrong_lengths() -> None:
    data = SaltDataset(ids=["a"], images=np.zeros((1, 2, 2)), masks=None, depths=np.zeros(1))
    assert data.subset([0]).masks is None
    with pytest.raises(ValueError, match=r"2 ids but.*images"):
        SaltDataset(ids=["a", "b"], images=np.zeros((1, 2, 2)), masks=None, depths=np.zeros(2))


# ----------------------------------------------------------------------------- the real data


def test_real_train_loads_checked_and_untouched(real_data_dir: Path) -> None:
    before = snapshot(real_data_dir)
    data = load_train(real_data_dir, progress=False)  # also checks every train.csv row against its mask
    assert snapshot(real_data_dir) == before
    assert len(data) == len(list((real_data_dir / "train" / "images").glob("*.png")))
    assert data.ids == sorted(data.ids)
    assert data.images.dtype == np.float32 and 0 <= data.images.min() and data.images.max() <= 1
    assert data.masks is not None and set(np.unique(data.masks).tolist()) == {0.0, 1.0}
    assert np.isfinite(data.depths).all()
    classes = coverage_class(salt_coverage(data.masks))
    _, val_idx = stratified_split(salt_coverage(data.masks))
    assert set(classes[val_idx]) == set(classes)
    assert abs(len(val_idx) - 0.1 * len(data)) <= 11


def test_real_test_images(real_data_dir: Path) -> None:
    before = snapshot(real_data_dir / "test")
    data = load_test(real_data_dir, n_images=50, progress=False)
    assert snapshot(real_data_dir / "test") == before
    assert len(data) == 50 and data.masks is None and np.isfinite(data.depths).all()
    assert data.images.shape == (50, SIZE, SIZE) and data.images.max() <= 1


def test_builtin_synthetic_layout_loads(synthetic_data_dir: Path) -> None:
    before = snapshot(synthetic_data_dir)
    train, test = load_train(synthetic_data_dir, progress=False), load_test(synthetic_data_dir, progress=False)
    assert snapshot(synthetic_data_dir) == before
    assert len(train) > 0 and len(test) > 0 and train.masks is not None
    assert np.isfinite(train.depths).all()
