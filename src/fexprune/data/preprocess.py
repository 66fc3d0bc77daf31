"""Pixels in, network input out: decode, grayscale, resize to 90x72, normalise.

The paper converts RGB frames to gray, resizes 720x576 to 90x72 and normalises; it does not say how,
so `normalize_images` offers per-image and data-set statistics and the config records which was used.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

NORMALIZATIONS = ("per-image", "dataset", "none", "clahe")
CLAHE_CLIP, CLAHE_TILES = 2.0, (4, 4)  # OpenCV's contrast limit; 4x4 tiles of ~22x18 px on a 90x72 image


class DecodeError(Exception):
    """A file that is not a readable image; the message is the reason listed in `skipped`."""


def decode_image(data: bytes) -> np.ndarray:
    """Bytes of any image file -> uint8 array, (H, W) gray or (H, W, 3|4) BGR(A).

    OpenCV decodes (three times faster than Pillow on SFEW's PNGs); it returns None on truncated PNG
    and JPEG files, and a JPEG without its end marker is refused up front. Where OpenCV fails, Pillow
    tries (formats OpenCV lacks) and otherwise names the reason. 16-bit images are scaled to 8 bits.
    """
    if not data:
        raise DecodeError("empty file (0 bytes)")
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise DecodeError("truncated JPEG (no end-of-image marker)")
    if data[:8] == _PNG_SIGNATURE:
        _check_png_chunks(data)
    _check_pixel_count(data)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is not None and pixels.size:
        return _from_opencv(pixels)
    return _decode_with_pillow(data)


def read_image(path: str | os.PathLike) -> tuple[np.ndarray | None, str, str]:
    """(pixels as decode_image gives them, the file's SHA-1, "") or (None, "", the reason the file is skipped)."""
    try:
        data = Path(path).read_bytes()
        image = decode_image(data)
    except DecodeError as error:
        return None, "", str(error)
    except OSError as error:
        return None, "", f"cannot read ({error.strerror or error})"
    return image, hashlib.sha1(data).hexdigest(), ""


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


MAX_PIXELS = 50_000_000  # 7x a 4K frame; a 0.9 MB PNG can declare 30000x30000 and take 2.1 GB to decode


def _check_pixel_count(data: bytes) -> None:
    """Refuse, from the header alone, an image whose decoded pixels would exceed MAX_PIXELS."""
    if data[:8] == _PNG_SIGNATURE and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])  # IHDR, the first chunk (checked above)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:  # reads the header only
                    width, height = image.size
        except Image.DecompressionBombError as error:
            raise DecodeError(f"image too large to decode ({error})") from None
        except Exception:  # not a format Pillow knows: OpenCV decides, and sizes nothing huge unseen
            return
    if width * height > MAX_PIXELS:
        raise DecodeError(f"image too large to decode ({width}x{height} = {width * height / 1e6:.0f} megapixels; "
                          f"the limit is {MAX_PIXELS / 1e6:.0f})")


def _check_png_chunks(data: bytes) -> None:
    """Refuse a damaged PNG before libpng sees it: libpng prints its complaint straight to stderr,
    around the one line the CLI promises. Checks every chunk's length and CRC (~0.1 ms per frame)."""
    view = memoryview(data)
    offset = 8
    while offset + 12 <= len(data):
        length, kind = struct.unpack(">I4s", view[offset : offset + 8])
        if not kind.isalpha():
            raise DecodeError(f"corrupt PNG (no valid chunk at byte {offset})")
        end = offset + 12 + length
        if end > len(data):
            break
        if zlib.crc32(view[offset + 4 : end - 4]) != struct.unpack(">I", view[end - 4 : end])[0]:
            raise DecodeError(f"corrupt PNG (checksum of its {kind.decode('ascii')} chunk at byte {offset} is wrong)")
        if kind == b"IEND":
            return
        offset = end
    raise DecodeError("truncated PNG (the file ends before its IEND chunk)")


def _from_opencv(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 2:  # gray + alpha
        pixels = pixels[:, :, 0]
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return (pixels.astype(np.float32) * (255.0 / 65535.0)).round().astype(np.uint8)
    peak = 1.0 if pixels.dtype.kind == "f" and float(np.nanmax(pixels)) <= 1.0 else 255.0
    return np.clip(np.nan_to_num(pixels.astype(np.float64)) * (255.0 / peak), 0, 255).round().astype(np.uint8)


def _decode_with_pillow(data: bytes) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                return _to_array(image)
    except DecodeError:
        raise
    except Exception as error:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError, ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "cannot identify image file" in reason:
            reason = "not an image (unrecognised format)"
        raise DecodeError(reason) from None


def _to_array(image: Image.Image) -> np.ndarray:
    if image.width < 1 or image.height < 1:
        raise DecodeError("image has no pixels")
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or pixels.max() > 255 else 255.0
        return np.clip(pixels * (255.0 / peak), 0, 255).round().astype(np.uint8)
    if mode == "L":
        return np.asarray(image, dtype=np.uint8)
    if mode in ("1", "LA", "La") or (mode in ("P", "PA") and _palette_is_gray(image)):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])  # BGR, as OpenCV would decode it


def _palette_is_gray(image: Image.Image) -> bool:
    palette = image.getpalette() or []
    triples = np.asarray(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
    return bool(len(triples)) and bool((triples == triples[:, :1]).all())


def to_gray(image_bgr_or_gray: np.ndarray) -> np.ndarray:
    """uint8 (H, W) from a gray, BGR or BGRA uint8 image."""
    image = np.asarray(image_bgr_or_gray)
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    return image


def to_gray_resized(image_bgr_or_gray: np.ndarray, size: tuple[int, int] = (90, 72)) -> np.ndarray:
    """uint8 (H, W) at `size` = (width, height); INTER_AREA averages pixels when shrinking."""
    image = to_gray(image_bgr_or_gray)
    width, height = size
    if image.shape == (height, width):
        return np.ascontiguousarray(image)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def normalize_images(
    images_uint8: np.ndarray, method: str = "per-image", stats: dict | None = None
) -> tuple[np.ndarray, dict]:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) and the statistics used.

    "per-image": each image to zero mean, unit std (lighting differences vanish).
    "dataset":   one mean/std for all pixels; pass the training images first and reuse the returned
                 stats on the test images, so no test statistic leaks into training.
    "none":      x / 255.
    "clahe":     contrast-limited adaptive histogram equalisation of the uint8 image, then per-image:
                 light that falls off across a face (a lamp on one side) is evened out too.
    """
    images = np.asarray(images_uint8)
    if images.ndim != 3:
        raise ValueError(f"expected (N, H, W) images, got shape {images.shape}")
    if method == "clahe":
        equalizer = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=CLAHE_TILES)
        equalized = np.stack([equalizer.apply(np.ascontiguousarray(image, dtype=np.uint8)) for image in images]) if len(images) else images
        x, _ = normalize_images(equalized, "per-image")
        return x, {"method": "clahe", "clip_limit": CLAHE_CLIP, "tiles": list(CLAHE_TILES)}
    x = images.astype(np.float32)[:, None]  # (N, 1, H, W)
    if method == "none":
        return x / np.float32(255.0), {"method": "none", "scale": 255.0}
    if method == "per-image":
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        std = x.std(axis=(1, 2, 3), keepdims=True)
        std[std < 1e-6] = 1.0  # a flat image stays flat (zeros) instead of dividing by zero
        return (x - mean) / std, {"method": "per-image"}
    if method == "dataset":
        if stats is None or "mean" not in stats:
            mean, std = float(x.mean()), float(x.std())
        else:
            mean, std = float(stats["mean"]), float(stats["std"])
        std = std if std > 1e-6 else 1.0
        return (x - np.float32(mean)) / np.float32(std), {"method": "dataset", "mean": mean, "std": std}
    raise ValueError(f"unknown normalization {method!r} (choose from {', '.join(NORMALIZATIONS)})")
