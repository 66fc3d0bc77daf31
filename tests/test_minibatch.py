"""The shared mini-batch loop: a teacher's soft targets enter the loss only when asked, on the very images the
model is trained on (mixed-up ones included)."""

import torch
from torch import nn

from fexprune.training.minibatch import train_epoch


def _network(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 7))


def _epoch(model: nn.Module, **options) -> dict:
    torch.manual_seed(0)
    x, y = torch.randn(20, 1, 12, 10), torch.randint(0, 7, (20,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return train_epoch(model, x, y, optimizer, torch.Generator().manual_seed(3), 8, **options)


class _Recording(nn.Module):
    """A teacher that keeps what it was shown; `fail` makes any call an error."""

    def __init__(self, fail: bool = False):
        super().__init__()
        self.net, self.fail, self.seen = _network(2), fail, []

    def forward(self, x):
        assert not self.fail, "the teacher was asked although distillation is off"
        self.seen.append(x.clone())
        return self.net(x)


def test_a_teacher_with_weight_zero_is_never_asked_and_changes_nothing():
    plain, taught = _network(), _network()
    _epoch(plain)
    _epoch(taught, teacher=_Recording(fail=True), distill=0.0)
    for a, b in zip(plain.parameters(), taught.parameters()):
        assert torch.equal(a, b)


def test_the_teacher_sees_the_mixed_up_images_the_model_is_trained_on():
    model, teacher = _network(), _Recording()
    shown = []
    model.register_forward_hook(lambda module, inputs, output: shown.append(inputs[0].clone()))
    row = _epoch(model, teacher=teacher, distill=0.5, mixup=0.4)
    assert len(teacher.seen) == len(shown) == 3  # 20 images in batches of 8
    for a, b in zip(teacher.seen, shown):
        assert torch.equal(a, b)
    plain = _network()
    _epoch(plain, mixup=0.4)  # the same batches and blends without the teacher: other weights
    assert any(not torch.equal(a, b) for a, b in zip(plain.parameters(), model.parameters()))
    assert row["train_loss"] > 0
