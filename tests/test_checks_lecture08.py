"""The checks of lecture 08's exercises accept the package's answers and name the usual slips."""
import pytest
import torch

from sslteach import transfer
from sslteach.checks import ExerciseError, check_balanced_subset, check_gap_closed


def test_the_package_answers_pass(capsys):
    check_balanced_subset(transfer.balanced_subset)
    check_gap_closed(transfer.gap_closed)
    assert "correct" in capsys.readouterr().out


def first_of_each_class(labels, per_class, num_classes, generator):
    return torch.cat([(labels == c).nonzero().squeeze(1)[:per_class] for c in range(num_classes)])


def with_replacement(labels, per_class, num_classes, generator):
    picks = []
    for c in range(num_classes):
        members = (labels == c).nonzero().squeeze(1)
        picks.append(members[torch.randint(len(members), (per_class,), generator=generator)])
    return torch.cat(picks)


def ignores_the_generator(labels, per_class, num_classes, generator):
    return transfer.balanced_subset(labels, per_class, num_classes, torch.Generator().manual_seed(torch.seed() % 1000))


def returns_labels(labels, per_class, num_classes, generator):
    return labels[transfer.balanced_subset(labels, per_class, num_classes, generator)]


@pytest.mark.parametrize("wrong, message", [
    (first_of_each_class, "not random"),
    (with_replacement, "chosen twice"),
    (ignores_the_generator, "same generator seed"),
    (returns_labels, "look like class labels"),
])
def test_balanced_subset_slips_are_named(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_balanced_subset(wrong)


@pytest.mark.parametrize("wrong, message", [
    (lambda m, r, s: m / s, "not from zero"),
    (lambda m, r, s: (s - m) / (s - r), "still open"),
    (lambda m, r, s: m - r, "Divide"),
])
def test_gap_closed_slips_are_named(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_gap_closed(wrong)
