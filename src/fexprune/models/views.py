"""How a run scores its test images, and new images after it: the model's logits, optionally averaged
over each image's mirror image and over the same faces cut at other margins.

The views a run averaged are recorded (results.json's training entry and the checkpoint's preprocessing
hold `TEST_TIME_KEYS`), so predict, export and the reports score and describe images as the run did.
"""

from __future__ import annotations

import torch
from torch import nn

TEST_TIME_KEYS = ("tta", "tta_margins")  # how a run scored its test images


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, tta: bool = False, batch_size: int = 256,
                   views: tuple[torch.Tensor, ...] = ()) -> torch.Tensor:
    """The model's logits for `x`; with `tta` (the mirror images) or `views` (the same images cut otherwise),
    the log of the mean probability over all of them."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        chunks = [v[start:start + batch_size] for v in (x, *views)]
        if not tta and not views:
            out.append(model(chunks[0]))
            continue
        inputs = chunks + [chunk.flip(-1) for chunk in chunks] if tta else chunks
        out.append(torch.stack([model(chunk).softmax(1) for chunk in inputs]).mean(0).log())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def scored_views(values: dict) -> list[str]:
    """The views of each test image a run averaged, from its `tta` and `tta_margins`: for its report and
    its ONNX sidecar."""
    views = ["as cut"] + (["mirrored"] if values.get("tta") == "hflip" else [])
    if values.get("tta_margins"):
        views.append("cut at margins " + " and ".join(f"{m:g}" for m in values["tta_margins"]) + " too")
    return views
