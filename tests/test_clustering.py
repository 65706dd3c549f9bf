"""Tests of sslteach.clustering (DeepCluster): PCA whitening, k-means against a reference loop
and on separable blobs, empty clusters, NMI against scikit-learn, the uniform sampler, and a
smoke run of the training path."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sslteach.clustering import (
    DeepClusterSettings,
    assign,
    kmeans,
    normalized_mutual_info,
    pca_whiten,
    pretrain_deepcluster,
    split_empty_clusters,
    uniform_over_clusters,
)
from sslteach.encoders import small_convnet
from sslteach.profiles import CLASS
from sslteach.methods import pretrain

pytestmark = pytest.mark.usefixtures("one_thread")


def blobs(per_cluster=50, k=4, D=5, spread=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 5 * torch.randn(k, D, generator=g)
    labels = torch.arange(k).repeat_interleave(per_cluster)
    return centres[labels] + spread * torch.randn(len(labels), D, generator=g), labels


def test_pca_whiten_gives_identity_covariance_on_top_axes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    white = pca_whiten(x, dim=3, eps=0)
    assert white.shape == (500, 3)
    torch.testing.assert_close(white.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(white.T @ white / 499, torch.eye(3, dtype=torch.float64), atol=1e-8, rtol=0)
    # The kept axes are the top ones: by the SVD centred = U S V^T, whitening keeps sqrt(N - 1) U[:, :3]
    # (each column up to its sign).
    U, _, _ = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    torch.testing.assert_close(white.abs(), (U[:, :3] * math.sqrt(499)).abs(), atol=1e-8, rtol=1e-6)


def test_assign_matches_reference_loop():
    g = torch.Generator().manual_seed(0)
    x, c = torch.randn(30, 4, generator=g), torch.randn(5, 4, generator=g)
    expected = [min(range(5), key=lambda j: (x[i] - c[j]).norm().item()) for i in range(30)]
    assert assign(x, c).tolist() == expected


def kmeans_reference(x, centroids, iterations):
    """Lloyd's algorithm one point and one cluster at a time (no empty clusters occur here)."""
    centroids = centroids.clone()
    for _ in range(iterations):
        labels = [min(range(len(centroids)), key=lambda j: (p - centroids[j]).norm().item()) for p in x]
        for j in range(len(centroids)):
            members = [p for p, l in zip(x, labels) if l == j]
            centroids[j] = torch.stack(members).mean(0)
    return centroids


def test_kmeans_matches_reference_loop():
    x, _ = blobs(per_cluster=10, k=3, spread=1.0)
    g = torch.Generator().manual_seed(1)
    labels, centroids = kmeans(x, 3, iterations=4, generator=g)
    start = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(1))[:3]]  # the same draw
    torch.testing.assert_close(centroids, kmeans_reference(x, start, 4))
    assert labels.tolist() == assign(x, centroids).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_recovers_two_separated_blobs(seed):
    """From any two random starts Lloyd's algorithm separates two far blobs. (With more blobs it
    can stop in a local minimum, two starts in one blob; random starts are what faiss uses.)"""
    x, truth = blobs(per_cluster=40, k=2)
    labels, _ = kmeans(x, 2, 20, torch.Generator().manual_seed(seed))
    assert normalized_mutual_info(labels, truth) == pytest.approx(1.0)


def test_kmeans_with_more_clusters_than_distinct_points_handles_empty_clusters():
    x = torch.tensor([[0.0, 0.0]] * 10 + [[1.0, 1.0]] * 10)  # two distinct points, five clusters
    labels, centroids = kmeans(x, 5, iterations=5, generator=torch.Generator().manual_seed(0))
    assert labels.shape == (20,) and torch.isfinite(centroids).all()
    with pytest.raises(ValueError, match="cannot make 30 clusters"):
        kmeans(x, 30)


def test_split_empty_clusters_reseeds_from_a_populated_one():
    centroids = torch.tensor([[1.0, 2.0], [0.0, 0.0], [5.0, 5.0]])
    counts = torch.tensor([10, 0, 0])
    assert split_empty_clusters(centroids, counts, torch.Generator().manual_seed(0)) == 2
    assert (counts > 0).all() and counts.sum() == 10
    assert len({tuple(c.tolist()) for c in centroids}) == 3  # all distinct again
    assert torch.allclose(centroids[1], torch.tensor([1.0, 2.0]), atol=1e-3)  # next to its donor


@pytest.mark.parametrize("seed", range(4))
def test_nmi_agrees_with_scikit_learn(seed):
    from sklearn.metrics import normalized_mutual_info_score

    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 7, (300,), generator=g)
    b = torch.where(torch.rand(300, generator=g) < 0.5, a, torch.randint(0, 5, (300,), generator=g))
    assert normalized_mutual_info(a, b) == pytest.approx(normalized_mutual_info_score(a.numpy(), b.numpy()), abs=1e-10)


def test_nmi_special_cases():
    from sklearn.metrics import normalized_mutual_info_score

    a = torch.tensor([0, 0, 1, 1, 2, 2])
    assert normalized_mutual_info(a, 10 - a) == pytest.approx(1.0)  # a renaming
    assert normalized_mutual_info(a, torch.tensor([5, 5, 9, 9, 7, 7])) == pytest.approx(1.0)
    constant = torch.zeros(6, dtype=torch.long)
    assert normalized_mutual_info(constant, constant) == normalized_mutual_info_score(constant, constant) == 1.0
    assert normalized_mutual_info(a, constant) == pytest.approx(normalized_mutual_info_score(a, constant))


def test_uniform_over_clusters_balances_unequal_clusters():
    assignments = torch.tensor([0] * 90 + [1] * 9 + [3] * 1)  # cluster 2 is empty
    sample = uniform_over_clusters(assignments, 30_000, torch.Generator().manual_seed(0))
    counts = torch.bincount(assignments[sample], minlength=4).float() / len(sample)
    torch.testing.assert_close(counts, torch.tensor([1 / 3, 1 / 3, 0, 1 / 3]), atol=0.02, rtol=0)
    # Within a cluster, members are equally likely.
    members = torch.bincount(sample[assignments[sample] == 1], minlength=100)[90:99].float()
    assert members.min() > 0.7 * members.mean()


def test_pretrain_deepcluster_history():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(40) % 10
    profile = dataclasses.replace(CLASS, steps=4, batch_size=8, warmup_steps=1)
    settings = DeepClusterSettings(clusters=5, rounds=2, cluster_images=32, pca_dim=8, kmeans_iterations=3)
    head, history, _ = pretrain_deepcluster(small_convnet((4, 8)), images, labels, profile, 10, 0, settings)
    assert len(history["loss"]) == 4 and all(math.isfinite(v) for v in history["loss"])
    assert len(history["nmi_labels"]) == 3 and len(history["nmi_previous_round"]) == 1  # rounds + 1, rounds - 1
    assert all(0 <= v <= 1 for v in history["nmi_labels"] + history["nmi_previous_round"])
    assert head["weight"].shape == (5, 8) and history["images_seen"] == 4 * 8


def test_smoke_through_train_pretrain():
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    checkpoint = pretrain("deepcluster", images, torch.arange(32) % 10, dataclasses.replace(CLASS, steps=2, batch_size=16, warmup_steps=1))
    assert len(checkpoint["history"]["loss"]) == 2 and all(math.isfinite(v) for v in checkpoint["history"]["loss"])
