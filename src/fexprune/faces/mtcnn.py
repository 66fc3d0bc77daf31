"""MTCNN (Zhang et al., 2016), a cascade of three small CNNs that finds faces and five landmarks on each
(the eyes, the nose, the mouth corners): the "mtcnn" detector step.

Why here: OpenCV's cascades and dlib's HOG detector are frontal detectors from the 2000s; on SFEW they
miss 12% of the faces, and the eye cascades see few eye pairs. MTCNN was what EmotiW entries detected and
aligned SFEW's faces with. Its weights come from a registry wheel, `facenet-pytorch` (MIT licence,
Timothy Esler, ported from Zhang et al.'s release): that package pins an old torch and imports
torchvision, so it is not installed: `fexprune weights fetch` takes its three weight files from the
pinned wheel (fexprune.weights); an installed copy is read where there is no fetched one. The networks and the stages below follow its
`detect_face`; tests/test_mtcnn.py checks they give its boxes and landmarks.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fexprune import weights

WEIGHTS_PACKAGE = "facenet-pytorch==2.6.0"
FETCH_HINT = f"fexprune weights fetch (takes its weights from the {WEIGHTS_PACKAGE} wheel)"
THRESHOLDS = (0.6, 0.7, 0.7)  # face probability each stage needs (facenet-pytorch's defaults)
PYRAMID_FACTOR = 0.709  # each pyramid level is this much smaller: sqrt(0.5)


class PNet(nn.Module):
    """Proposal network: a 12x12 window slid over each pyramid level."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement network on 24x24 candidates."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))  # the weights' (w, h, c) order
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output network on 48x48 candidates: the final box and the five landmarks."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the image's pixels
    score: float  # the output network's face probability
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, left and right mouth corner (as seen), x and y

    @property
    def roll(self) -> float:
        """Degrees the line through the eyes slopes (positive: the eye on the image's right is lower),
        as fexprune.faces.align measures it."""
        (lx, ly), (rx, ry) = self.landmarks[0], self.landmarks[1]
        return math.degrees(math.atan2(ry - ly, rx - lx))


def weights_folder() -> Path | None:
    """Where pnet.pt, rnet.pt and onet.pt are: the fetched copy (fexprune.weights), else an installed
    facenet-pytorch's; None without either."""
    for package in (weights.package_folder("facenet-pytorch", "facenet_pytorch"), _installed_package()):
        folder = package / "data" if package is not None else None
        if folder is not None and all((folder / f"{name}.pt").is_file() for name in ("pnet", "rnet", "onet")):
            return folder
    return None


def _installed_package() -> Path | None:
    """An installed facenet_pytorch's folder, found without importing it (its import needs torchvision)."""
    try:
        spec = importlib.util.find_spec("facenet_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def available() -> bool:
    return weights_folder() is not None


_lock = threading.Lock()
_device = torch.device("cpu")


def use_device(device: torch.device) -> None:
    """Where the three networks run from now on (`fexprune data faces --device`); the boxes come back as numbers."""
    global _device
    _device = torch.device(device)


@functools.lru_cache(maxsize=1)
def networks() -> tuple[PNet, RNet, ONet]:
    folder = weights_folder()
    if folder is None:
        raise RuntimeError(f"the mtcnn detector needs its weights: {FETCH_HINT}")
    nets = []
    for name, net in (("pnet", PNet()), ("rnet", RNet()), ("onet", ONet())):
        net.load_state_dict(torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True))
        nets.append(net.eval())
    return tuple(nets)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first. Overlap is intersection over union,
    or over the smaller box (`by_min`, the last stage: it drops a box inside a surer one)."""
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores, kind="stable")[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        overlap = inter / (np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square on its centre (columns 0-3 of a copy)."""
    boxes = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 0] += w / 2 - side / 2
    boxes[:, 1] += h / 2 - side / 2
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] += offsets * np.stack([w, h, w, h], axis=1)
    return boxes


def _patches(image: torch.Tensor, boxes: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Each box cut from `image` (1, 3, H, W), clipped to the frame, area-resized to size x size and
    scaled to [-1, 1]; and which boxes had pixels to cut."""
    height, width = image.shape[2:]
    whole = boxes[:, :4].astype(np.int64)  # truncated toward zero, as the reference does
    x, y = np.maximum(whole[:, 0], 1), np.maximum(whole[:, 1], 1)
    ex, ey = np.minimum(whole[:, 2], width), np.minimum(whole[:, 3], height)
    valid = (ey > y - 1) & (ex > x - 1)
    crops = [F.interpolate(image[:, :, y[k] - 1:ey[k], x[k] - 1:ex[k]], size=(size, size), mode="area")
             for k in np.flatnonzero(valid)]
    if not crops:  # every box fell outside the frame
        return torch.zeros(0, 3, size, size), valid
    return (torch.cat(crops) - 127.5) * 0.0078125, valid


def detect(image_rgb: np.ndarray, min_face: int = 20) -> list[Detection]:
    """Every face in `image_rgb` ((H, W, 3) uint8, RGB) at least `min_face` pixels high, surest first."""
    pnet, rnet, onet = (net.to(_device) for net in networks())
    height, width = image_rgb.shape[:2]
    with _lock, torch.inference_mode():  # one detection at a time: the nets are shared
        image = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1)[None].float().to(_device)
        candidates = []
        scale, side = 12.0 / min_face, min(height, width) * 12.0 / min_face
        while side >= 12:
            level = F.interpolate(image, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            offsets, probs = pnet((level - 127.5) * 0.0078125)
            face = probs[0, 1].cpu().numpy()
            ys, xs = np.nonzero(face >= THRESHOLDS[0])
            if len(ys):
                corner = np.stack([xs, ys], axis=1).astype(np.float64)
                boxes = np.concatenate([np.floor((2 * corner + 1) / scale), np.floor((2 * corner + 12) / scale),
                                        face[ys, xs, None], offsets[0][:, ys, xs].cpu().numpy().T], axis=1)
                candidates.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
            scale, side = scale * PYRAMID_FACTOR, side * PYRAMID_FACTOR
        if not candidates:
            return []
        boxes = np.concatenate(candidates)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]  # this stage's offsets scale without the +1
        boxes = _square(np.concatenate([boxes[:, :4] + boxes[:, 5:9] * np.stack([w, h, w, h], axis=1),
                                        boxes[:, 4:5]], axis=1))

        patches, valid = _patches(image, boxes, 24)
        offsets, probs = (out.cpu().numpy() for out in rnet(patches))
        boxes = boxes[valid]
        sure = probs[:, 1] > THRESHOLDS[1]
        boxes = np.concatenate([boxes[sure, :4], probs[sure, 1:2]], axis=1)
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = _square(_regress(boxes[keep], offsets[sure][keep]))
        if not len(boxes):
            return []

        patches, valid = _patches(image, boxes, 48)
        offsets, points, probs = (out.cpu().numpy() for out in onet(patches))
        boxes = boxes[valid]
        sure = probs[:, 1] > THRESHOLDS[2]
        boxes = np.concatenate([boxes[sure, :4], probs[sure, 1:2]], axis=1)
        points, offsets = points[sure], offsets[sure]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        landmarks = np.stack([w * points[:, :5] + boxes[:, 0:1] - 1, h * points[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes = _regress(boxes, offsets)
        keep = nms(boxes[:, :4], boxes[:, 4], 0.7, by_min=True)
    return [Detection(tuple(float(v) for v in boxes[k, :4]), float(boxes[k, 4]), landmarks[k]) for k in keep]
