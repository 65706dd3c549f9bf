"""Lecture 00, introduction: the check of the weighted kNN vote (``knn_vote``)."""
from __future__ import annotations

import torch

from ..evaluate import knn_predict
from .common import ExerciseError, call_exercise


def _knn_variant(train, train_labels, test, num_classes, k, temperature, normalise=True, weighted=True, nearest=True):
    """The kNN vote with one of the usual mistakes switched on, to recognise it in a student's answer."""
    if normalise:
        train, test = torch.nn.functional.normalize(train, dim=1), torch.nn.functional.normalize(test, dim=1)
    similarity = test @ train.T  # (M, N)
    top_sim, top_idx = similarity.topk(k, dim=1, largest=nearest)  # (M, k)
    weights = (top_sim / temperature).exp() if weighted else torch.ones_like(top_sim)
    votes = torch.zeros(len(test), num_classes).scatter_add_(1, train_labels[top_idx], weights)  # (M, C)
    return votes.argmax(dim=1)


def check_knn(knn_vote) -> None:
    """Check ``knn_vote(train_features, train_labels, test_features, num_classes, k, temperature)``."""
    generator = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(5, 16, generator=generator)  # 5 classes in 16 dimensions
    train_labels = torch.arange(200) % 5
    scale = 1 + 4 * torch.rand(200, 1, generator=generator)  # lengths vary: normalising matters
    train = scale * (centres[train_labels] + 6 * torch.randn(200, 16, generator=generator))  # overlapping classes
    test = centres[torch.arange(100) % 5] + 6 * torch.randn(100, 16, generator=generator)
    k, temperature = 20, 0.1
    predicted = call_exercise("knn_vote", knn_vote, train, train_labels, test, 5, k, temperature)
    expected = knn_predict(train, train_labels, test, 5, k, temperature)
    if not torch.is_tensor(predicted) or tuple(predicted.shape) != (100,):
        shape = tuple(predicted.shape) if torch.is_tensor(predicted) else type(predicted).__name__
        raise ExerciseError(f"knn_vote returned {shape}; it should return one predicted class per test feature: (100,).")
    if torch.equal(predicted.long(), expected):
        print("knn_vote: correct. Cosine similarity, the k nearest, votes weighted by exp(s / T).")
        return
    mistakes = [
        (dict(normalise=False), "the features were not L2-normalised: cosine similarity is the dot product of "
                                "F.normalize(x, dim=1) vectors, so long feature vectors do not win every vote."),
        (dict(weighted=False), "every neighbour got one vote; weight each by exp(similarity / temperature)."),
        (dict(nearest=False), "you took the k *least* similar training features; topk(k) with the default "
                              "largest=True on the similarities gives the nearest."),
    ]
    for variant, advice in mistakes:
        if torch.equal(predicted.long(), _knn_variant(train, train_labels, test, 5, k, temperature, **variant)):
            raise ExerciseError(advice)
    raise ExerciseError(f"{int((predicted.long() != expected).sum())} of 100 predictions differ from the weighted "
                        "kNN. Steps: normalise both sets of features, similarity = test @ train.T, the k largest per "
                        "row, weights exp(s / T), add each weight to its neighbour's class, take the argmax.")
