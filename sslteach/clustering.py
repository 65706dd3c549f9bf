"""DeepCluster (Caron, Bojanowski, Joulin & Douze, ECCV 2018): k-means pseudo-labels, retrained.

Alternate two steps for a few rounds:

1. cluster: features of the training images from the current encoder (eval mode), PCA-whitened,
   L2-normalised, grouped by k-means; the cluster ids become pseudo-labels;
2. learn: a classifier head, freshly initialised (the old one's classes mean nothing now), is
   trained with the encoder to predict the pseudo-labels, with batches drawn uniformly over
   clusters so that a few huge clusters cannot dominate (the paper's UnifLabelSampler).

Two traps the paper names and this module handles: k-means leaves some clusters empty, and an
empty cluster is re-seeded by splitting a large one; and without the uniform sampling, the
trivial solution of one giant cluster is the easiest to predict. Progress is tracked with the
normalised mutual information (NMI) between rounds (stabilises) and against the true labels
(rises), computed here on the device.
"""
from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn.functional as F

from .augment import simclr_augment
from .evaluate import extract_features
from .loop import Classifier, fit, recompute_batchnorm
from .profiles import Profile


@dataclasses.dataclass(frozen=True)
class DeepClusterSettings:
    clusters: int = 100
    """k of k-means: the paper uses 10,000 for ImageNet's 1,000 classes (10x over-clustering);
    100 is the same ratio for CIFAR-10. The class sweep (benchmarks/sweeps/, validation split
    carved from the training images, linear probe, seeds 0-2) measured 100: 45.3 +- 1.4 and 300:
    43.0 +- 1.1 (level within noise; 30, one seed: 45.6); a learning rate of 0.05 instead of the
    profile's 0.1 gave 43.9 +- 0.5 (level). Reproduce: `python tools/sweep.py deepcluster --set
    clusters=300 --seed S`."""
    rounds: int = 5
    """Cluster-then-learn rounds (the paper: one per epoch, hundreds); the steps are split evenly."""
    cluster_images: int = 10_240
    """A fixed random subset of training images, clustered and trained on each round. Extracting
    features of all 40,000 every round would cost more than a third of the training budget."""
    pca_dim: int = 64
    """Whitened dimensions kept (the paper: 4,096 -> 256; here 256 -> 64, dropping the noisiest)."""
    kmeans_iterations: int = 20
    """The paper's 20."""


def pca_whiten(features: torch.Tensor, dim: int, eps: float = 1e-5) -> torch.Tensor:
    """Project (N, D) features on their top ``dim`` principal axes and scale each to unit variance.

    Returns (N, dim). As DeepCluster's faiss PCA with eigen_power -0.5.
    """
    centred = features - features.mean(dim=0)
    covariance = centred.T @ centred / (len(features) - 1)  # (D, D)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending order
    top = eigenvalues.flip(0)[:dim], eigenvectors.flip(1)[:, :dim]  # (dim,), (D, dim)
    return centred @ top[1] / (top[0].clamp(min=0) + eps).sqrt()


def cluster_features(encoder, images: torch.Tensor, pca_dim: int) -> torch.Tensor:
    """DeepCluster's pre-processing: eval-mode features, PCA-whitened, L2-normalised; (N, pca_dim)."""
    return F.normalize(pca_whiten(extract_features(encoder, images), pca_dim), dim=1)


def assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (Euclidean) for every row: (N, D), (k, D) -> (N,)."""
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, and |x|^2 is the same for every centroid.
    return (centroids.pow(2).sum(dim=1) - 2 * x @ centroids.T).argmin(dim=1)


def split_empty_clusters(centroids, counts, generator=None, eps: float = 1e-4):
    """Re-seed every empty cluster by splitting a non-empty one (as faiss k-means does).

    A cluster j is picked with probability proportional to its size; the empty cluster gets a
    copy of its centroid nudged by +eps (relative), j is nudged by -eps, and the two share j's
    count. Modifies ``centroids`` (k, D) and ``counts`` (k,) in place; returns how many were empty.
    """
    empty = (counts == 0).nonzero().flatten().tolist()
    for cluster in empty:  # a loop over the few empty clusters, not over images
        donor = torch.multinomial(counts.float(), 1, generator=generator).item()
        sign = torch.ones_like(centroids[donor])
        sign[1::2] = -1  # a small asymmetric push, so the two halves separate at the next step
        centroids[cluster] = centroids[donor] * (1 + eps * sign)
        centroids[donor] = centroids[donor] * (1 - eps * sign)
        counts[cluster] = counts[donor] // 2
        counts[donor] -= counts[cluster]
    return len(empty)


@torch.no_grad()
def kmeans(x: torch.Tensor, k: int, iterations: int = 20, generator=None):
    """Lloyd's k-means on the device.

    x (N, D) -> (assignments (N,) int64, centroids (k, D)). Starts from k distinct random
    points; each iteration assigns, then moves each centroid to its members' mean; empty clusters
    are re-seeded by ``split_empty_clusters``. The returned assignments are to the final centroids.
    """
    N = len(x)
    if k > N:
        raise ValueError(f"cannot make {k} clusters of {N} points")
    centroids = x[torch.randperm(N, device=x.device, generator=generator)[:k]].clone()  # (k, D)
    for _ in range(iterations):
        labels = assign(x, centroids)
        counts = torch.bincount(labels, minlength=k)  # (k,)
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)  # (k, D)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled].unsqueeze(1)
        split_empty_clusters(centroids, counts, generator)
    return assign(x, centroids), centroids


def normalized_mutual_info(a: torch.Tensor, b: torch.Tensor) -> float:
    """NMI of two labellings (N,), (N,) of the same points: I(a; b) / mean(H(a), H(b)).

    The arithmetic-mean normalisation, scikit-learn's default; 1 for identical partitions (up to
    renaming), 0 for independent ones. Computed from the contingency table on the device.
    """
    _, a = torch.unique(a, return_inverse=True)
    _, b = torch.unique(b, return_inverse=True)
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    if na == nb == 1:
        return 1.0  # two trivial partitions agree perfectly (scikit-learn's convention)
    joint = torch.bincount(a * nb + b, minlength=na * nb).view(na, nb).double() / len(a)  # (na, nb)
    pa, pb = joint.sum(dim=1), joint.sum(dim=0)
    nonzero = joint > 0
    mutual = (joint[nonzero] * (joint[nonzero] / (pa[:, None] * pb[None, :])[nonzero]).log()).sum()
    entropy = lambda p: -(p[p > 0] * p[p > 0].log()).sum()  # noqa: E731
    mean_entropy = (entropy(pa) + entropy(pb)) / 2
    return 0.0 if mean_entropy == 0 else float((mutual / mean_entropy).clamp(0, 1))


def uniform_over_clusters(assignments: torch.Tensor, n: int, generator=None) -> torch.Tensor:
    """n indices drawn so that every non-empty cluster is equally likely (DeepCluster's sampler).

    assignments (N,) -> (n,) indices into it: a uniformly chosen cluster, then a uniformly chosen
    member of it, all at once; small clusters are sampled with replacement.
    """
    device = assignments.device
    order = torch.argsort(assignments)  # members of each cluster next to each other
    clusters, sizes = torch.unique(assignments, return_counts=True)  # non-empty only
    starts = torch.cumsum(sizes, 0) - sizes  # (c,) where each cluster begins in ``order``
    chosen = torch.randint(len(clusters), (n,), device=device, generator=generator)  # (n,)
    offset = (torch.rand(n, device=device, generator=generator) * sizes[chosen]).long()  # (n,)
    return order[starts[chosen] + offset]


def pseudo_label_loss(model, images, pseudo_labels, generator=None):
    """Cross-entropy on pseudo-labels of augmented images (crop, flip, colour jitter)."""
    x = simclr_augment(images, generator=generator).contiguous(memory_format=torch.channels_last)
    logits = model(x)  # (B, clusters)
    return F.cross_entropy(logits, pseudo_labels), {"accuracy": (logits.argmax(1) == pseudo_labels).float().mean().item()}


def pretrain_deepcluster(encoder, images, labels, profile: Profile, num_classes: int, seed: int,
                         settings: DeepClusterSettings = DeepClusterSettings()):
    """DeepCluster on the class budget: the profile's steps split into rounds of cluster-then-learn.

    ``fit`` runs once per round on a uniform-over-clusters sample of the clustered images, with
    the k-means ids in place of labels, so each round has its own warm-up and cosine decay, like
    the fresh head it trains. The true ``labels`` are used only to report NMI against them.
    Colour jitter stands in for the paper's Sobel filter: both stop clustering on colour alone.
    """
    device = images.device
    generator = torch.Generator(device).manual_seed(seed + 1)
    subset = torch.randperm(len(images), device=device, generator=generator)[: settings.cluster_images]
    images, labels = images[subset], labels[subset]
    clusters = min(settings.clusters, len(images))  # only matters for tiny test sets
    rounds = min(settings.rounds, profile.steps)
    model = Classifier(encoder, clusters).to(device)
    recompute_batchnorm(encoder, images)  # an untrained encoder's running statistics are 0 and 1
    history = {"loss": [], "accuracy": [], "nmi_previous_round": [], "nmi_labels": [], "empty_clusters": []}
    start, previous = time.perf_counter(), None
    for round_index in range(rounds):
        features = cluster_features(encoder, images, settings.pca_dim)
        assignments, _ = kmeans(features, clusters, settings.kmeans_iterations, generator)
        history["nmi_labels"].append(normalized_mutual_info(assignments, labels))
        if previous is not None:
            history["nmi_previous_round"].append(normalized_mutual_info(assignments, previous))
        history["empty_clusters"].append(clusters - assignments.unique().numel())
        previous = assignments

        model.head.reset_parameters()  # new clusters, new classes
        steps = profile.steps // rounds + (round_index < profile.steps % rounds)
        round_profile = dataclasses.replace(profile, steps=steps, warmup_steps=min(profile.warmup_steps, steps // 4))
        sample = uniform_over_clusters(assignments, steps * profile.batch_size, generator)
        round_history = fit(model, pseudo_label_loss, images[sample], assignments[sample], round_profile,
                            images_per_step=profile.images_per_step(), seed=seed + round_index,
                            desc=f"deepcluster round {round_index + 1}")
        history["loss"] += round_history["loss"]
        history["accuracy"] += round_history["accuracy"]
    # One last clustering, of the trained encoder, closes the NMI-against-labels curve.
    final, _ = kmeans(cluster_features(encoder, images, settings.pca_dim), clusters, settings.kmeans_iterations, generator)
    history["nmi_labels"].append(normalized_mutual_info(final, labels))
    history["seconds"] = time.perf_counter() - start
    history["images_seen"] = profile.steps * profile.batch_size
    return model.head.state_dict(), history, {}
