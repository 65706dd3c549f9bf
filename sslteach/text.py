"""Self-supervision in language: word vectors from a small corpus (lecture 09).

The pretext task of word2vec's skip-gram (Mikolov et al., "Distributed Representations of Words
and Phrases and their Compositionality", NIPS 2013): from a word, predict the words around it.
The labels are free: every position of a text is a training example. With negative sampling
(Eq. 4 of that paper) the softmax over the vocabulary becomes K + 1 logistic regressions: the
true context word against K words drawn from a noise distribution.

The corpus shipped with the package is plain text of Shakespeare's plays (public domain; see
``sslteach/data/SHAKESPEARE.md`` for the source). Letters used below: T tokens, V words in the
vocabulary, D dimensions of a vector, B pairs in a batch, K negatives per pair, C context words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CORPUS = Path(__file__).resolve().parent / "data" / "shakespeare.txt"


def load_corpus(path: Path = CORPUS) -> list[str]:
    """The corpus as lower-case word tokens, speaker names left out.

    A line ending in ``:`` (``First Citizen:``) names who speaks; it is stage layout, not text.
    Apostrophes stay inside words (``we'll``, ``know't``); every other character separates words.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    spoken = " ".join(line for line in lines if not line.rstrip().endswith(":"))
    return re.findall(r"[a-z]+(?:'[a-z]+)*", spoken.lower())


@dataclass(frozen=True)
class Vocabulary:
    """The words kept for training, most frequent first.

    words : tuple of str, (V,)
    counts : (V,) int64 tensor, how often each word occurs in the corpus
    """

    words: tuple[str, ...]
    counts: torch.Tensor

    def __len__(self) -> int:
        return len(self.words)

    def index(self, word: str) -> int:
        """The position of ``word``; KeyError if it is not in the vocabulary."""
        return self._positions()[word]

    def __contains__(self, word: str) -> bool:
        return word in self._positions()

    def _positions(self) -> dict[str, int]:
        if "_cache" not in self.__dict__:
            object.__setattr__(self, "_cache", {w: i for i, w in enumerate(self.words)})
        return self.__dict__["_cache"]


def build_vocabulary(tokens: list[str], min_count: int) -> Vocabulary:
    """Every word seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
    counts: dict[str, int] = {}
    for token in tokens:
        counts[token] = counts.get(token, 0) + 1
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return Vocabulary(tuple(kept), torch.tensor([counts[w] for w in kept], dtype=torch.int64))


def encode(tokens: list[str], vocabulary: Vocabulary) -> torch.Tensor:
    """Tokens -> (T,) int64 word indices; words outside the vocabulary are dropped, as word2vec does."""
    return torch.tensor([vocabulary.index(t) for t in tokens if t in vocabulary], dtype=torch.int64)


def keep_probability(counts: torch.Tensor, threshold: float) -> torch.Tensor:
    """(V,) probability of keeping each occurrence of a word: Mikolov et al. 2013b, Eq. 5.

    A word of frequency f is discarded with probability 1 - sqrt(threshold / f): "the", "and"
    and "i" are mostly dropped, rare words always kept. Frequent words carry little about their
    neighbours, and dropping them lets the window reach further.
    """
    frequency = counts.double() / counts.sum()
    return (threshold / frequency).sqrt().clamp(max=1.0).float()


def skipgram_pairs(ids: torch.Tensor, window: int) -> torch.Tensor:
    """(T,) word indices -> (P, 2) pairs (centre, context) of words at most ``window`` apart.

    Each offset o in 1..window gives the pairs (ids[t], ids[t + o]) and (ids[t + o], ids[t]),
    so every word is the centre of its left and right neighbours. P = 2 sum_o (T - o).
    """
    pairs = []
    for offset in range(1, window + 1):
        left, right = ids[:-offset], ids[offset:]  # (T - o,) each
        pairs.append(torch.stack([left, right], dim=1))
        pairs.append(torch.stack([right, left], dim=1))
    return torch.cat(pairs)


def noise_distribution(counts: torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """(V,) the unigram distribution raised to 3/4 (Mikolov et al. 2013b, section 2.2), normalised.

    The power flattens it: rare words are drawn as negatives more often than their frequency.
    """
    weights = counts.double() ** power
    return (weights / weights.sum()).float()


def negative_sampling_loss(centre: torch.Tensor, context: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The skip-gram negative-sampling loss, Mikolov et al. 2013b, Eq. 4, averaged over the batch.

    -log sigma(v'_c . v_w) - sum_k log sigma(-v'_k . v_w): the true context word c scores high,
    the K noise words low.

    Parameters
    ----------
    centre : (B, D) tensor
        Input vectors v_w of the centre words.
    context : (B, D) tensor
        Output vectors v'_c of their true context words.
    noise : (B, K, D) tensor
        Output vectors v'_k of K noise words per pair.

    Returns
    -------
    loss : scalar tensor
    """
    positive = (centre * context).sum(dim=1)  # (B,)
    negative = torch.einsum("bkd,bd->bk", noise, centre)  # (B, K)
    return -(F.logsigmoid(positive) + F.logsigmoid(-negative).sum(dim=1)).mean()


class SkipGram(nn.Module):
    """Two tables of word vectors: v (a word as the centre) and v' (a word as a context).

    The vectors students look at are the input table v, as in word2vec.
    """

    def __init__(self, vocabulary_size: int, dim: int):
        super().__init__()
        self.input = nn.Embedding(vocabulary_size, dim)
        self.output = nn.Embedding(vocabulary_size, dim)
        # word2vec's initialisation: small random input vectors, zero output vectors.
        nn.init.uniform_(self.input.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.output.weight)

    def loss(self, pairs: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """pairs (B, 2) of (centre, context) indices, negatives (B, K) indices -> scalar loss."""
        return negative_sampling_loss(self.input(pairs[:, 0]), self.output(pairs[:, 1]), self.output(negatives))


@dataclass(frozen=True)
class SkipGramSettings:
    """One skip-gram run; the defaults train on the shipped corpus in seconds on one CPU thread."""

    min_count: int = 5
    """Words seen fewer times are left out of the vocabulary."""
    dim: int = 64
    """Length D of a word vector."""
    window: int = 3
    """Context words on each side of the centre."""
    negatives: int = 5
    """Noise words K per true pair."""
    subsample_threshold: float = 1e-3
    """The t of Eq. 5: occurrences of words more frequent than this are thinned out."""
    epochs: int = 3
    """Passes over the (re-subsampled) corpus."""
    batch_size: int = 1024
    """Pairs per step."""
    learning_rate: float = 0.01
    """Adam's step size (word2vec used plain SGD with a decaying rate; Adam needs no schedule here)."""
    seed: int = 0
    """Seeds the subsampling, the pair order and the negatives."""


def train_skipgram(ids: torch.Tensor, counts: torch.Tensor, settings: SkipGramSettings = SkipGramSettings()):
    """Train skip-gram with negative sampling on a corpus of word indices.

    Parameters
    ----------
    ids : (T,) int64 tensor
        The corpus, as indices into a vocabulary of V words.
    counts : (V,) int64 tensor
        How often each word occurs (for subsampling and the noise distribution).

    Returns
    -------
    model : SkipGram
    losses : list of float, the mean loss of each epoch
    """
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    model = SkipGram(len(counts), settings.dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    keep, noise = keep_probability(counts, settings.subsample_threshold), noise_distribution(counts)
    losses = []
    for _ in range(settings.epochs):
        kept = ids[torch.rand(len(ids), generator=generator) < keep[ids]]  # subsampling, new every epoch
        pairs = skipgram_pairs(kept, settings.window)  # (P, 2)
        pairs = pairs[torch.randperm(len(pairs), generator=generator)]
        total = 0.0
        for batch in pairs.split(settings.batch_size):
            negatives = torch.multinomial(noise, len(batch) * settings.negatives, replacement=True,
                                          generator=generator).view(len(batch), settings.negatives)  # (B, K)
            loss = model.loss(batch, negatives)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(pairs))
    return model.eval(), losses


def nearest_neighbours(vectors: torch.Tensor, index: int, k: int = 8):
    """The k words whose vectors have the highest cosine similarity with word ``index`` (itself left out).

    vectors : (V, D) tensor -> (indices (k,) int64, similarities (k,) float), most similar first.
    """
    unit = F.normalize(vectors, dim=1)
    similarity = unit @ unit[index]  # (V,)
    similarity[index] = -float("inf")
    best = similarity.topk(k)
    return best.indices, best.values


def fill_in_the_blank(model: SkipGram, counts: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """(C,) indices of the words around a blank -> (V,) log-scores of every word for the blank.

    A skip-gram with negative sampling learns v_w . v'_c ~ PMI(w, c) - log K (Levy and Goldberg,
    "Neural Word Embedding as Implicit Matrix Factorization", NIPS 2014). Treating the context
    words as independent given the blank (naive Bayes),

        log p(w | c_1..c_C) = log p(w) + sum_j PMI(w, c_j) + const
                            ~ log count(w) + sum_j v_w . v'_{c_j} + const.

    Word order plays no part: a bag of neighbours, not a grammar.
    """
    with torch.no_grad():
        scores = model.input.weight @ model.output.weight[context].sum(dim=0)  # (V,)
        return scores + counts.double().log().float()
