"""Tests of sslteach.pirl: the two branches' shapes, the loss against a reference computation, the
invariance it asks for, and a smoke run of the training path."""

from __future__ import annotations

import math

import pytest
import torch

from sslteach.encoders import small_convnet
from sslteach.jigsaw import hamming_permutations
from sslteach.npid import MemoryBank
from sslteach.pirl import PIRLModel, PIRLSettings, pirl_loss, pretrain_pirl
from sslteach.methods import pretrain
from helpers import random_images, tiny_profile

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = tiny_profile(steps=2, batch_size=16)


def tiny_model(feature_dim=6):
    torch.manual_seed(0)
    return PIRLModel(small_convnet((4, 8)), feature_dim)


def test_branch_shapes_and_normalisation():
    model = tiny_model()
    f = model.embed_image(torch.rand(5, 3, 32, 32))
    g = model.embed_tiles(torch.rand(5, 9, 3, 8, 8))
    assert f.shape == g.shape == (5, 6)
    torch.testing.assert_close(f.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(g.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(model(torch.rand(2, 3, 32, 32)).norm(dim=1), torch.ones(2))


def test_tile_embedding_depends_on_tile_order():
    """g sees the tiles in puzzle order, so an invariant g is something PIRL has to learn."""
    model = tiny_model().eval()
    tiles = torch.rand(2, 9, 3, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(model.embed_tiles(tiles), model.embed_tiles(tiles[:, torch.arange(9).roll(1)]))


def test_loss_is_the_weighted_sum_of_two_bank_softmaxes():
    model = tiny_model()
    memory = MemoryBank.random(10, 6, generator=torch.Generator().manual_seed(0))
    images, indices = random_images(4), torch.tensor([1, 4, 7, 9])
    permutations = hamming_permutations(5)
    settings = PIRLSettings(weight=0.3, temperature=0.5, feature_dim=6)
    loss, metrics, f = pirl_loss(model, memory, images, indices, permutations, settings, torch.Generator().manual_seed(0))
    assert 0 <= metrics["tile_accuracy"] <= 1 and 0 <= metrics["image_accuracy"] <= 1
    assert f.shape == (4, 6) and not f.requires_grad
    # Reference: recompute the two terms from f and g one image at a time, with the same draws.
    g_image = torch.Generator().manual_seed(0)
    from sslteach.augment import simclr_augment
    from sslteach.jigsaw import shuffled_tiles

    image_view = simclr_augment(images, generator=g_image)
    tile_view = simclr_augment(images, generator=g_image)
    chosen = torch.randint(5, (4,), generator=g_image)
    tiles = shuffled_tiles(tile_view, permutations[chosen], g_image)
    f_ref, g_ref = model.embed_image(image_view), model.embed_tiles(tiles)
    total = 0.0
    for b, i in enumerate(indices.tolist()):
        for weight, z in ((0.3, g_ref[b]), (0.7, f_ref[b])):
            scores = [torch.dot(memory.features[j], z).item() / 0.5 for j in range(10)]
            total += -weight * (scores[i] - math.log(sum(math.exp(s) for s in scores)))
    assert loss.item() == pytest.approx(total / 4, rel=1e-4)


def test_loss_is_low_when_both_branches_match_the_bank():
    """If f and g of every image equal its bank entry and entries are orthogonal, the loss is ~0."""

    class Oracle(torch.nn.Module):
        def __init__(self, bank):
            super().__init__()
            self.bank = bank
            self.rows = None

        def embed_image(self, x):
            return self.bank[self.rows]

        def embed_tiles(self, tiles):
            return self.bank[self.rows]

    bank = torch.eye(6)
    oracle = Oracle(bank)
    oracle.rows = torch.tensor([0, 3])
    loss, _, _ = pirl_loss(oracle, MemoryBank(bank), random_images(2), oracle.rows, hamming_permutations(3),
                           PIRLSettings(temperature=0.05))
    assert loss.item() < 1e-6


def test_pretrain_pirl_history_and_heads():
    settings = PIRLSettings(feature_dim=8, permutations=4)
    heads, history, extras = pretrain_pirl(small_convnet((4, 8)), random_images(24), torch.zeros(24, dtype=torch.long), TINY, 10, 0, settings)
    assert len(history["loss"]) == 2 and all(math.isfinite(v) for v in history["loss"])
    assert history["images_seen"] == 2 * 8 == TINY.steps * TINY.images_per_step(2)
    assert history["knn_monitor"]["step"] == [0, 2]  # NPID's monitor: before the first step and after the last
    assert set(heads) == {"image_head.weight", "image_head.bias", "tile_head.weight", "tile_head.bias", "puzzle_head.weight", "puzzle_head.bias"}
    assert extras["permutations"].shape == (4, 9)


def test_smoke_through_train_pretrain():
    checkpoint = pretrain("pirl", random_images(32), torch.arange(32) % 10, TINY)
    assert len(checkpoint["history"]["loss"]) == 2 and all(math.isfinite(v) for v in checkpoint["history"]["loss"])
