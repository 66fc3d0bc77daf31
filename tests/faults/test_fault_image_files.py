"""Bad files inside a class folder: each is skipped, listed with its reason in results.json, and
counted; the run still finishes (exit 0) on the good files. Odd pixel formats and tiny images load."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from fexprune.data.loading import load_image_set

from .conftest import accounted_results, run_subprocess, skip_reasons, train_args


def _frame(images):
    return sorted((images / "Sad").glob("*.png"))[0]


def _train_with_one_bad_file(cli, images, tmp_path, name: str, content: bytes) -> str:
    (images / "Happy" / name).write_bytes(content)
    outcome = cli(*train_args(images, tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    results = accounted_results(tmp_path / "run", images)
    assert results["data"]["n_images"] == 21 and results["data"]["counts"]["Happy"] == 3
    reasons = skip_reasons(results)
    assert list(reasons) == [name]
    assert str(images / "Happy" / name) in {item["path"] for item in results["skipped"]}
    assert f"{len(reasons)} files skipped" in outcome.out
    return reasons[name]


def test_corrupt_png_is_skipped_and_listed(cli, images, tmp_path):
    whole = _frame(images).read_bytes()
    reason = _train_with_one_bad_file(cli, images, tmp_path, "cut_1_1.png", whole[: len(whole) // 2])
    assert reason == "truncated PNG (the file ends before its IEND chunk)"


def test_png_with_flipped_bits_is_skipped_and_listed(cli, images, tmp_path):
    damaged = bytearray(_frame(images).read_bytes())
    damaged[200:260] = bytes(b ^ 0x55 for b in damaged[200:260])  # inside the first IDAT chunk
    reason = _train_with_one_bad_file(cli, images, tmp_path, "flipped_1_1.png", bytes(damaged))
    assert reason.startswith("corrupt PNG (checksum of its IDAT chunk at byte ")


def test_png_with_garbage_body_is_skipped_and_listed(cli, images, tmp_path):
    whole = _frame(images).read_bytes()
    body = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    reason = _train_with_one_bad_file(cli, images, tmp_path, "noise_1_1.png", whole[:33] + body)
    assert reason == "corrupt PNG (no valid chunk at byte 33)"


def test_damaged_pngs_leave_stderr_of_a_real_process_clean(images, tmp_path):
    """libpng prints its own complaints to stderr; damaged PNGs are refused before it sees them."""
    whole = _frame(images).read_bytes()
    (images / "Happy" / "cut_1_1.png").write_bytes(whole[: len(whole) // 2])
    (images / "Happy" / "noise_1_1.png").write_bytes(whole[:33] + bytes(range(256)) * 8)
    outcome = run_subprocess(*train_args(images, tmp_path / "run"))
    assert outcome.code == 0 and outcome.err == ""
    assert "2 files skipped" in outcome.out
    assert set(skip_reasons(accounted_results(tmp_path / "run", images))) == {"cut_1_1.png", "noise_1_1.png"}


def test_zero_byte_file_is_skipped_and_listed(cli, images, tmp_path):
    assert _train_with_one_bad_file(cli, images, tmp_path, "empty_1_1.png", b"") == "empty file (0 bytes)"


def test_text_file_named_png_is_skipped_and_listed(cli, images, tmp_path):
    reason = _train_with_one_bad_file(cli, images, tmp_path, "notes_1_1.png", b"label checked by hand\n")
    assert reason == "not an image (unrecognised format)"


def test_non_image_extension_is_skipped_and_listed(cli, images, tmp_path):
    assert _train_with_one_bad_file(cli, images, tmp_path, "labels.txt", b"x") == "not an image file (extension '.txt')"


def _rgb(size=(180, 144)) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def _gray_of(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (90, 72), interpolation=cv2.INTER_AREA)


def _write_rgba(path):
    Image.fromarray(_rgb()).convert("RGBA").save(path)
    return _gray_of(_rgb())


def _write_16_bit(path):
    deep = (_rgb()[:, :, 0].astype(np.uint16) * 257)  # 0..65535, the 8-bit values exactly scaled
    assert cv2.imwrite(str(path), deep)
    return cv2.resize(_rgb()[:, :, 0], (90, 72), interpolation=cv2.INTER_AREA)


def _write_palette(path):
    image = Image.fromarray(_rgb()).convert("P")
    image.save(path)
    return _gray_of(np.asarray(image.convert("RGB")))


def _write_gray(path):
    Image.fromarray(_rgb()).convert("L").save(path)
    return cv2.resize(np.asarray(Image.fromarray(_rgb()).convert("L")), (90, 72), interpolation=cv2.INTER_AREA)


def _write_gray_alpha(path):
    gray = Image.fromarray(_rgb()).convert("L")
    gray.convert("LA").save(path)
    return cv2.resize(np.asarray(gray), (90, 72), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("write", [_write_rgba, _write_16_bit, _write_palette, _write_gray, _write_gray_alpha],
                         ids=["rgba", "16-bit", "palette", "gray", "gray+alpha"])
def test_odd_pixel_format_loads_as_the_same_gray_image(cli, images, tmp_path, write):
    expected = write(images / "Happy" / "odd_1_1.png")
    outcome = cli(*train_args(images, tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    results = accounted_results(tmp_path / "run", images)
    assert results["skipped"] == [] and results["data"]["counts"]["Happy"] == 4
    loaded = load_image_set(images, progress=False)  # the cache entry the run wrote
    pixels = loaded.images[[s.path.name for s in loaded.samples].index("odd_1_1.png")]
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1  # rounding of the gray weights


@pytest.mark.parametrize("size", [(5, 4), (1, 1)])
def test_image_far_smaller_than_90x72_is_kept_upscaled(cli, images, tmp_path, size):
    """Tiny images are not an error: they are resized up like any other and counted as kept."""
    Image.fromarray(_rgb(size)).save(images / "Happy" / "tiny_1_1.png")
    outcome = cli(*train_args(images, tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    results = accounted_results(tmp_path / "run", images)
    assert results["skipped"] == [] and results["data"]["counts"]["Happy"] == 4
    assert results["data"]["image_size"] == [90, 72]


def test_only_unreadable_files_is_one_line_and_exit_2(cli, tmp_path):
    for name in ("Happy", "Sad"):
        (tmp_path / "Images" / name).mkdir(parents=True)
        (tmp_path / "Images" / name / "a_1_1.png").write_text("not a png")
    outcome = cli(*train_args(tmp_path / "Images", tmp_path / "run"))
    outcome.one_error_line(str(tmp_path / "Images"), "holds no readable image (2 files skipped: not an image")
    assert not (tmp_path / "run").exists()
