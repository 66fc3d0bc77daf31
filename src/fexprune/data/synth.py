"""A synthetic SFEW-like data set, so every command runs without the real (licensed) frames.

Course layout `Images/<Class>/<Movie>_<clip>_<frame>.png`: 720x576 RGB letterboxed movie frames, one
drawn face per frame. Movies fix an actor (skin, hair, face shape, clothes) and a scene; clips fix the
expression, camera position and lighting; frames of a clip differ by small motion and fresh noise, as
SFEW's do. The 7 expressions differ in mouth, brows and eyes, each shown with a random intensity, so
weak expressions look close to neutral: learnable, not trivially so.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fexprune.data.classes import EXPRESSIONS
from fexprune.errors import InputError
from fexprune.outputs import Outputs
from fexprune.runs import rows_csv_bytes

GENERATOR_VERSION = 4  # bump whenever the drawing changes: the built-in data set is regenerated

_FIRST = ["Silver", "Night", "Broken", "Golden", "Last", "Red", "Quiet", "Iron", "Paper", "Winter",
          "Lucky", "Hidden", "Wild", "Cold", "Lost", "Bright", "Dark", "Little", "Second", "Blue"]
_SECOND = ["Harbor", "Train", "Road", "City", "Garden", "Summer", "Island", "Bridge", "Letter", "Dance",
           "Dreams", "House", "River", "Echo", "Crown", "Story", "Hearts", "Valley", "Games", "Sky"]

# Expression geometry in face-height units (see _draw_face): brow raise and slant (inner end up > 0),
# eye openness, mouth width, corner curvature (up > 0), opening, asymmetry.
_NEUTRAL = dict(brow_raise=0.0, brow_slant=0.0, eye_open=1.0, mouth_width=0.30, mouth_curve=0.0, mouth_open=0.0, mouth_asym=0.0)
_EXPRESSION_SHAPES = {
    "Angry": dict(brow_raise=-0.035, brow_slant=-0.07, eye_open=0.55, mouth_width=0.24, mouth_curve=-0.02, mouth_open=0.03),
    "Disgust": dict(brow_raise=-0.02, brow_slant=-0.03, eye_open=0.5, mouth_width=0.27, mouth_open=0.03, mouth_asym=0.06),
    "Fear": dict(brow_raise=0.05, brow_slant=0.05, eye_open=1.55, mouth_width=0.38, mouth_curve=-0.03, mouth_open=0.06),
    "Happy": dict(brow_raise=0.01, eye_open=0.65, mouth_width=0.40, mouth_curve=0.08, mouth_open=0.04),
    "Neutral": dict(),
    "Sad": dict(brow_raise=0.02, brow_slant=0.06, eye_open=0.8, mouth_width=0.28, mouth_curve=-0.07),
    "Surprise": dict(brow_raise=0.08, eye_open=1.7, mouth_width=0.16, mouth_open=0.15),
}


@dataclass
class _Movie:
    name: str
    digits: int
    skin: tuple
    hair: tuple
    clothes: tuple
    aspect: float  # face width / height
    bar: int  # letterbox bar height in pixels
    scene: np.ndarray  # (H, W, 3) float32 background


def write_synthetic(
    out: str | os.PathLike, per_class: int = 100, seed: int = 0, size: tuple[int, int] = (720, 576),
    progress: bool = True, min_intensity: float = 0.0, duplicates: int = 1, overwrite: bool = False,
) -> Path:
    """Write the set under `out/Images/<Class>/` and the true face boxes to `out/faces.csv`; returns the
    Images folder. Same seed, same bytes. A folder holding a data set already is refused, and so is an
    existing faces.csv unless `overwrite`.

    `duplicates` frames are copied byte for byte into a second class, as the real set has one such frame.
    """
    if per_class < 1:
        raise InputError(f"--per-class must be at least 1, got {per_class}")
    width, height = int(size[0]), int(size[1])
    if width < 64 or height < 48:
        raise InputError(f"synthetic frames must be at least 64x48, got {width}x{height}")
    out = Path(out)
    images = out / "Images"
    if images.exists() and any(images.rglob("*.png")):
        raise InputError("already holds a synthetic data set (Images/); choose an empty folder", out)
    outputs = Outputs(overwrite)
    outputs.plan(out / "faces.csv", "the true face boxes")
    rng = np.random.default_rng(seed)
    movies = _make_movies(rng, max(2, round(len(EXPRESSIONS) * per_class / 10)), width, height)
    plan = _plan_clips(rng, per_class, len(movies))
    written: dict[str, list[Path]] = {name: [] for name in EXPRESSIONS}
    faces: list[dict] = []
    bar = tqdm(total=per_class * len(EXPRESSIONS), desc="drawing frames", unit="img", file=sys.stderr,
               disable=not progress, leave=False)
    for label, movie_index, clip_id, n_frames in plan:
        movie = movies[movie_index]
        clip = _clip_params(rng, movie, label, width, height, min_intensity)
        frame_number = int(rng.integers(1, 40))
        for _ in range(n_frames):
            frame, face = _render(rng, movie, clip, width, height)
            path = images / label / f"{movie.name}_{clip_id:0{movie.digits}d}_{frame_number:08d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), frame, [cv2.IMWRITE_PNG_COMPRESSION, 3]):
                raise InputError("cannot write synthetic frame", path)
            written[label].append(path)
            faces.append({"path": path.relative_to(out).as_posix(), "label": label, **face})
            frame_number += int(rng.integers(1, 6))
            bar.update(1)
    bar.close()
    by_path = {row["path"]: row for row in faces}
    for source, target in _add_duplicates(rng, written, duplicates):
        copied = by_path[source.relative_to(out).as_posix()]
        by_path[target.relative_to(out).as_posix()].update({k: v for k, v in copied.items() if k not in ("path", "label")})
    outputs.write_bytes(out / "faces.csv", rows_csv_bytes(faces))  # ground truth for face detection: centre, size, tilt in pixels
    return images


def _make_movies(rng: np.random.Generator, count: int, width: int, height: int) -> list[_Movie]:
    names = [a + b for a in _FIRST for b in _SECOND]
    order = rng.permutation(len(names))
    movies = []
    for k in range(count):
        name = names[order[k % len(names)]] + (str(k // len(names) + 1) if k >= len(names) else "")
        tone = rng.uniform(0.35, 1.0)
        skin = (60 + 120 * tone, 90 + 110 * tone, 120 + 110 * tone)  # BGR, dark to light
        movies.append(_Movie(
            name=name,
            digits=int(rng.integers(6, 10)),
            skin=tuple(float(c) for c in skin),
            hair=tuple(float(c) for c in rng.uniform(10, 120) * np.array([0.8, 0.9, 1.0]) + rng.uniform(0, 30, 3)),
            clothes=tuple(float(c) for c in rng.uniform(20, 230, 3)),
            aspect=float(rng.uniform(0.7, 0.85)),
            bar=int(round(height * rng.uniform(0.1, 0.16))),
            scene=_scene(rng, width, height),
        ))
    return movies


def _scene(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A blurred backdrop: a colour gradient and some furniture-like shapes, larger than the frame so
    clips can pan across it."""
    w, h = width + width // 4, height + height // 4
    top, bottom = rng.uniform(20, 200, 3), rng.uniform(20, 200, 3)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    scene = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (h, w, 3)).astype(np.float32).copy()
    for _ in range(int(rng.integers(6, 16))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(scene, (x, y), (x + int(rng.integers(20, w // 3)), y + int(rng.integers(20, h // 2))), colour, -1)
        elif kind == 1:
            cv2.circle(scene, (x, y), int(rng.integers(10, h // 5)), colour, -1)
        else:
            cv2.line(scene, (x, y), (int(rng.integers(0, w)), int(rng.integers(0, h))), colour, int(rng.integers(2, 12)))
    return cv2.GaussianBlur(scene, (0, 0), sigmaX=float(rng.uniform(2, 6)))


def _plan_clips(rng: np.random.Generator, per_class: int, n_movies: int) -> list[tuple[str, int, int, int]]:
    """(class, movie, clip id, frames) for every clip; 1-4 frames a clip, clip ids unique per movie."""
    plan, used = [], set()
    for label in EXPRESSIONS:
        left = per_class
        while left:
            n = min(left, int(rng.integers(1, 5)))
            movie = int(rng.integers(0, n_movies))
            clip_id = int(rng.integers(1, 10**6))
            while (movie, clip_id) in used:
                clip_id += 1
            used.add((movie, clip_id))
            plan.append((label, movie, clip_id, n))
            left -= n
    return plan


def _clip_params(rng, movie: _Movie, label: str, width: int, height: int, min_intensity: float) -> dict:
    return dict(
        label=label,
        intensity=rng.uniform(min_intensity, 1.0) ** 1.6,  # many weak expressions, as in the wild
        # individual differences: nobody frowns exactly the same way
        quirks={key: rng.normal(0, 0.025 if key != "eye_open" else 0.25) for key in _NEUTRAL},
        centre=(width * rng.normal(0.48, 0.07), height * rng.normal(0.38, 0.05)),
        face_height=height * rng.uniform(0.2, 0.34),
        tilt=float(rng.normal(0, 9)),
        pan=(int(rng.integers(0, width // 4)), int(rng.integers(0, height // 4))),
        gain=rng.uniform(0.55, 1.3) * rng.uniform(0.85, 1.15, 3),
        light=float(rng.normal(0, 0.35)),  # horizontal light fall-off across the face
        noise=float(rng.uniform(4, 14)),
    )


def _frame_shape(rng, clip: dict) -> dict:
    """The clip's expression at this frame: it builds and fades, so frames of one clip differ."""
    k = clip["intensity"] * rng.uniform(0.6, 1.0)
    target = _EXPRESSION_SHAPES[clip["label"]]
    return {key: value + k * (target.get(key, value) - value) + clip["quirks"][key] for key, value in _NEUTRAL.items()}


def _render(rng, movie: _Movie, clip: dict, width: int, height: int) -> tuple[np.ndarray, dict]:
    px, py = clip["pan"]
    px = int(np.clip(px + rng.normal(0, 6), 0, width // 4))
    py = int(np.clip(py + rng.normal(0, 4), 0, height // 4))
    frame = movie.scene[py:py + height, px:px + width].copy()
    cx, cy = clip["centre"]
    cx, cy = cx + rng.normal(0, width * 0.03), cy + rng.normal(0, height * 0.02)
    face_height = clip["face_height"] * rng.normal(1.0, 0.06)
    tilt = clip["tilt"] + rng.normal(0, 5)
    _draw_person(frame, movie, _frame_shape(rng, clip), (cx, cy), face_height, tilt)
    face = {"cx": round(cx, 1), "cy": round(cy, 1), "width": round(face_height * movie.aspect, 1),
            "height": round(face_height, 1), "tilt": round(tilt, 1)}
    xs = (np.arange(width, dtype=np.float32) - cx) / (face_height * 2)
    frame *= (clip["gain"][None, None, :] * rng.normal(1.0, 0.08) * np.clip(1 + clip["light"] * xs, 0.3, 1.7)[None, :, None]).astype(np.float32)
    # 4x4 blocks of noise, like a compressed video's: a CNN at 90x72 sees it, and PNG still compresses
    blocks = rng.normal(0, clip["noise"], (-(-height // 4), -(-width // 4))).astype(np.float32)
    frame += np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)[:height, :width, None]
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    frame[: movie.bar] = 0
    frame[height - movie.bar:] = 0
    return frame, face


def _draw_person(frame, movie: _Movie, shape: dict, centre, face_height: float, tilt: float) -> None:
    cx, cy = centre
    h = face_height
    w = h * movie.aspect
    angle = math.radians(tilt)
    cos, sin = math.cos(angle), math.sin(angle)

    def point(u: float, v: float) -> tuple[int, int]:  # face units (x right, y down) -> frame pixels, x16
        x, y = u * h, v * h
        return int(round((cx + cos * x - sin * y) * 16)), int(round((cy + sin * x + cos * y) * 16))

    def ellipse(u, v, au, av, colour, thickness=-1):
        cv2.ellipse(frame, point(u, v), (max(1, int(au * h * 16)), max(1, int(av * h * 16))), tilt, 0, 360,
                    colour, thickness, cv2.LINE_AA, 4)

    def polyline(points, colour, thickness, closed=False, fill=False):
        pts = np.array([point(u, v) for u, v in points], dtype=np.int32)
        if fill:
            cv2.fillPoly(frame, [pts], colour, cv2.LINE_AA, 4)
        else:
            cv2.polylines(frame, [pts], closed, colour, max(1, int(thickness * h)), cv2.LINE_AA, 4)

    skin, dark = movie.skin, tuple(c * 0.25 for c in movie.skin)
    ellipse(0, 1.25, movie.aspect * 1.4, 0.55, movie.clothes)  # shoulders
    polyline([(-0.16, 0.3), (0.16, 0.3), (0.18, 0.8), (-0.18, 0.8)], tuple(c * 0.85 for c in skin), 0, fill=True)
    ellipse(0, -0.12, movie.aspect * 0.56, 0.46, movie.hair)  # hair behind the head
    ellipse(0, 0, w / h / 2, 0.5, skin)
    ellipse(0, -0.38, movie.aspect * 0.5, 0.14, movie.hair)  # fringe

    s = shape
    for side in (-1, 1):  # eyes and brows
        eye_u, eye_v = side * 0.19 * movie.aspect / 0.78, -0.06
        ellipse(eye_u, eye_v, 0.085, max(0.008, 0.04 * s["eye_open"]), (235, 235, 235))
        ellipse(eye_u, eye_v, 0.03, max(0.008, min(0.03, 0.04 * s["eye_open"])), (40, 30, 25))
        brow_v = -0.17 - s["brow_raise"]
        inner, outer = (side * 0.07, brow_v - s["brow_slant"]), (side * 0.3, brow_v + s["brow_slant"] * 0.3)
        middle = (side * 0.19, brow_v - 0.02 - s["brow_raise"] * 0.3)
        polyline([inner, middle, outer], movie.hair, 0.035)
    polyline([(0, -0.02), (-0.03, 0.12), (0.03, 0.13)], tuple(c * 0.7 for c in skin), 0.015)  # nose
    if s["mouth_asym"] > 0.03:  # disgust wrinkles the nose
        polyline([(-0.07, 0.02), (-0.03, 0.05)], tuple(c * 0.6 for c in skin), 0.012)
        polyline([(0.07, 0.02), (0.03, 0.05)], tuple(c * 0.6 for c in skin), 0.012)

    t = np.linspace(-1, 1, 15)
    base = 0.26 - s["mouth_curve"] * t**2 + s["mouth_curve"] * 0.5 - s["mouth_asym"] * np.clip(t, 0, 1)
    half_open = max(0.0, s["mouth_open"]) / 2 * (1 - t**2) ** 0.7
    u = t * s["mouth_width"] / 2
    upper, lower = list(zip(u, base - half_open)), list(zip(u, base + half_open))
    if s["mouth_open"] > 0.01:
        polyline(upper + lower[::-1], dark, 0, fill=True)
        polyline(upper, (200, 200, 210), 0.012)  # teeth edge
    polyline(upper, (70, 60, 150), 0.022)
    polyline(lower, (70, 60, 150), 0.022)


def _add_duplicates(rng, written: dict[str, list[Path]], count: int) -> list[tuple[Path, Path]]:
    """Overwrite a frame of one class with an exact copy of another class's, as the real SFEW set has one."""
    labels, pairs = list(written), []
    for _ in range(count):
        source_label, target_label = rng.choice(len(labels), 2, replace=False)
        sources, targets = written[labels[source_label]], written[labels[target_label]]
        if len(targets) < 2:
            continue
        source, target = sources[int(rng.integers(len(sources)))], targets[int(rng.integers(len(targets)))]
        target.write_bytes(source.read_bytes())
        pairs.append((source, target))
    return pairs
