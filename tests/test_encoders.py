"""Tests of sslteach.encoders: shapes of every stage, memory layouts, and the name lookup."""

from __future__ import annotations

import pytest
import torch

from sslteach.encoders import CIFAR10_MEAN, CIFAR10_STD, Normalize, build_encoder, resnet18_cifar, small_convnet

STAGES = {
    "small": [(32, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4)],
    "resnet18": [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)],
}


@pytest.fixture(scope="module", params=["small", "resnet18"])
def encoder(request):
    torch.manual_seed(0)
    return build_encoder(request.param).eval()


def batch(B=2):
    return torch.rand(B, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def name_of(encoder):
    return "small" if encoder.feature_dim == 256 else "resnet18"


def test_builders_match_names():
    assert small_convnet().feature_dim == 256
    assert resnet18_cifar().feature_dim == 512


def test_forward_shape(encoder):
    with torch.no_grad():
        features = encoder(batch(3))
    assert features.shape == (3, encoder.feature_dim)
    assert features.dtype == torch.float32 and torch.isfinite(features).all()


def test_forward_blocks_shapes(encoder):
    with torch.no_grad():
        outputs = encoder.forward_blocks(batch(2))
    assert [tuple(h.shape[1:]) for h in outputs] == STAGES[name_of(encoder)]
    assert encoder.block_dims == [c for c, _, _ in STAGES[name_of(encoder)]]
    assert len(encoder.blocks) == 4


def test_forward_is_pooled_last_block(encoder):
    x = batch(2)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), encoder.forward_blocks(x)[-1].mean(dim=(2, 3)))


def test_channels_last_input_gives_same_features(encoder):
    x = batch(2)
    with torch.no_grad():
        expected = encoder(x)
        got = encoder(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_channels_last_module():
    torch.manual_seed(0)
    encoder = small_convnet().to(memory_format=torch.channels_last).eval()
    with torch.no_grad():
        assert encoder(batch(2).contiguous(memory_format=torch.channels_last)).shape == (2, 256)


def test_custom_widths():
    encoder = small_convnet((8, 16, 24))
    with torch.no_grad():
        outputs = encoder.forward_blocks(batch(1))
    assert [tuple(h.shape[1:]) for h in outputs] == [(8, 32, 32), (16, 16, 16), (24, 8, 8)]
    assert encoder.feature_dim == 24


def test_normalize_centres_cifar_statistics():
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(Normalize()(mean), torch.zeros(1, 3, 4, 4))
    torch.testing.assert_close(Normalize()(mean + std), torch.ones(1, 3, 4, 4))


def test_build_encoder_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown encoder 'resnet50'"):
        build_encoder("resnet50")
