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
