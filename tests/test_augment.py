"""Augmentation: shapes kept, seeded, really random across samples, identity when switched off."""

from __future__ import annotations

import torch

from fexprune.data.augment import AugmentConfig, augment


def _batch():
    return torch.randn(8, 1, 72, 90, generator=torch.Generator().manual_seed(0))


def test_shape_and_dtype_kept_input_untouched():
    x = _batch()
    copy = x.clone()
    out = augment(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(x, copy)


def test_same_seed_same_batch_other_seed_other_batch():
    x = _batch()
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3))
    c = augment(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_off_is_identity_and_flip_mirrors():
    x = _batch()
    off = AugmentConfig(flip=False, max_shift=0.0, max_rotate=0.0, scale=(1.0, 1.0), brightness=0.0, contrast=0.0)
    assert torch.allclose(augment(x, torch.Generator().manual_seed(0), off), x, atol=1e-4)
    flip_only = AugmentConfig(flip=True, max_shift=0.0, max_rotate=0.0, scale=(1.0, 1.0), brightness=0.0, contrast=0.0)
    out = augment(x, torch.Generator().manual_seed(0), flip_only)
    for image, result in zip(x, out):
        assert torch.allclose(result, image, atol=1e-4) or torch.allclose(result, image.flip(-1), atol=1e-4)
    assert any(torch.allclose(r, i.flip(-1), atol=1e-4) for i, r in zip(x, out))


def test_random_erasing_blanks_one_rectangle_in_a_share_of_the_images():
    x = torch.randn(400, 1, 36, 45, generator=torch.Generator().manual_seed(0)) + 5  # no pixel is 0 before erasing
    still = dict(flip=False, max_shift=0.0, max_rotate=0.0, scale=(1.0, 1.0), brightness=0.0, contrast=0.0)
    out = augment(x, torch.Generator().manual_seed(2), AugmentConfig(erase=0.5, **still))
    blank = out[:, 0] == 0
    erased = blank.flatten(1).any(1)
    assert 0.4 < erased.float().mean() < 0.6  # about half the images
    for mask in blank[erased][:50]:  # each blank part is one axis-aligned rectangle of 2-20% of the image
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        assert mask.sum() <= 0.2 * mask.numel() + 2 * (mask.shape[0] + mask.shape[1])
    assert torch.allclose(out[~erased], x[~erased], atol=1e-4)
    again = augment(x, torch.Generator().manual_seed(2), AugmentConfig(erase=0.5, **still))
    assert torch.equal(out, again)  # seeded like every other draw
    default = augment(x, torch.Generator().manual_seed(2), AugmentConfig(**still))
    assert torch.allclose(default, x, atol=1e-4)  # off by default, and then no draw is taken
