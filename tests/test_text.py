"""Lecture 09's word vectors: skip-gram with negative sampling (sslteach.text)."""
import math

import pytest
import torch
import torch.nn.functional as F

from sslteach.checks import ExerciseError, check_negative_sampling_loss
from sslteach.text import (CORPUS, SkipGram, SkipGramSettings, build_vocabulary, encode, fill_in_the_blank,
                           keep_probability, load_corpus, nearest_neighbours, negative_sampling_loss,
                           noise_distribution, skipgram_pairs, train_skipgram)


def loss_loop(centre, context, noise):
    """Eq. 4 of Mikolov et al. (2013b), one pair and one noise word at a time."""
    total = 0.0
    for b in range(len(centre)):
        term = math.log(1 / (1 + math.exp(-float(context[b] @ centre[b]))))
        for k in range(noise.shape[1]):
            term += math.log(1 / (1 + math.exp(float(noise[b, k] @ centre[b]))))
        total -= term
    return total / len(centre)


@pytest.mark.parametrize("B,K,D", [(1, 1, 2), (5, 3, 4), (8, 10, 16)])
def test_loss_matches_the_papers_equation_term_by_term(B, K, D):
    g = torch.Generator().manual_seed(B * K * D)
    centre, context, noise = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g), torch.randn(B, K, D, generator=g)
    assert negative_sampling_loss(centre, context, noise).item() == pytest.approx(loss_loop(centre, context, noise), rel=1e-5)


@pytest.mark.parametrize("K", [1, 5, 15])
def test_loss_of_zero_vectors_is_one_plus_k_times_log_two(K):
    assert negative_sampling_loss(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, K, 4)).item() == pytest.approx((1 + K) * math.log(2))


def test_pairs_are_every_word_with_every_neighbour_within_the_window():
    ids = torch.tensor([10, 11, 12, 13, 14])
    pairs = skipgram_pairs(ids, window=2)
    loop = {(int(ids[i]), int(ids[j])) for i in range(5) for j in range(5) if i != j and abs(i - j) <= 2}
    assert len(pairs) == 2 * (4 + 3) and {tuple(p) for p in pairs.tolist()} == loop


def test_vocabulary_and_encoding():
    vocabulary = build_vocabulary("b a b c b a d".split(), min_count=2)
    assert vocabulary.words == ("b", "a") and vocabulary.counts.tolist() == [3, 2]
    assert vocabulary.index("a") == 1 and "c" not in vocabulary
    assert encode("a c b".split(), vocabulary).tolist() == [1, 0]


def test_subsampling_and_noise_distribution():
    counts = torch.tensor([1000, 10, 1])
    keep = keep_probability(counts, threshold=1e-2)
    frequency = counts / counts.sum()
    assert keep[0].item() == pytest.approx(math.sqrt(1e-2 / frequency[0].item()), rel=1e-5)
    assert keep[1:].tolist() == [1.0, 1.0]
    noise = noise_distribution(counts)
    assert noise.sum().item() == pytest.approx(1.0)
    assert noise[2] / noise[0] == pytest.approx(1000 ** -0.75, rel=1e-4)  # flatter than the frequencies


def test_corpus_is_spoken_text_without_speaker_names():
    tokens = load_corpus()
    assert CORPUS.exists() and len(tokens) > 100_000
    assert tokens[:6] == ["before", "we", "proceed", "any", "further", "hear"]  # "First Citizen:" left out
    assert all(t == t.lower() for t in tokens[:1000])


def test_nearest_neighbours_leave_the_word_out_and_sort_by_cosine():
    vectors = torch.tensor([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    indices, similarities = nearest_neighbours(vectors, 0, k=3)
    assert indices.tolist() == [1, 2, 3]
    assert similarities.tolist() == pytest.approx([F.cosine_similarity(vectors[0], vectors[1], dim=0).item(), 0.0, -1.0], abs=1e-6)


def test_fill_in_the_blank_is_log_count_plus_the_contexts_dot_products():
    model = SkipGram(4, 3).requires_grad_(False)
    torch.nn.init.normal_(model.output.weight, generator=torch.Generator().manual_seed(0))
    counts, context = torch.tensor([8, 4, 2, 1]), torch.tensor([1, 3])
    scores = fill_in_the_blank(model, counts, context)
    for w in range(4):
        want = math.log(counts[w]) + sum(float(model.input.weight[w] @ model.output.weight[c]) for c in context)
        assert scores[w].item() == pytest.approx(want, rel=1e-5)


def test_a_tiny_run_learns_which_words_go_together_and_is_deterministic():
    # Two "topics" that never share a window: words of a topic should end up closer.
    g = torch.Generator().manual_seed(0)
    text = torch.cat([torch.randint(0, 4, (200,), generator=g) if i % 2 == 0 else torch.randint(4, 8, (200,), generator=g)
                      for i in range(20)])
    counts = torch.bincount(text, minlength=8)
    settings = SkipGramSettings(dim=8, window=2, epochs=3, batch_size=256, learning_rate=0.05, subsample_threshold=1.0)
    model, losses = train_skipgram(text, counts, settings)
    assert losses[-1] < losses[0] < 6 * math.log(2) + 1e-3
    unit = F.normalize(model.input.weight.detach(), dim=1)
    similarity = unit @ unit.T
    same = (similarity[:4, :4].sum() - 4) / 12
    across = similarity[:4, 4:].mean()
    assert same > across + 0.3
    again, _ = train_skipgram(text, counts, settings)
    assert torch.equal(again.input.weight, model.input.weight)


def test_check_accepts_the_package_and_explains_mistakes(capsys):
    check_negative_sampling_loss(negative_sampling_loss)
    assert "correct" in capsys.readouterr().out

    def scaffold(centre, context, noise):
        raise NotImplementedError

    def mean_over_k(centre, context, noise):
        negative = torch.einsum("bkd,bd->bk", noise, centre)
        return -(F.logsigmoid((centre * context).sum(1)) + F.logsigmoid(-negative).mean(1)).mean()

    def no_minus_on_noise(centre, context, noise):
        return negative_sampling_loss(centre, context, -noise)

    def summed(centre, context, noise):
        return negative_sampling_loss(centre, context, noise) * len(centre)

    def numpy_loss(centre, context, noise):
        return torch.tensor(negative_sampling_loss(centre, context, noise).item())

    for fn, hint in [(scaffold, "NotImplementedError"), (mean_over_k, "summed over K"), (no_minus_on_noise, "minus sign"),
                     (summed, "mean over the B pairs"), (numpy_loss, "no gradient")]:
        with pytest.raises(ExerciseError, match=hint):
            check_negative_sampling_loss(fn)
