"""Alignment and uniformity made visible and measurable (lecture 07).

Two tools for the lecture on Wang & Isola (ICML 2020):

- **Measuring any encoder.** ``measurement_images`` fixes, once and seeded, the images of the
  protocol: a labelled kNN bank, held-out test images, and two augmented views of held-out
  images as positive pairs. ``encoder_features`` runs a frozen encoder over all of them and
  ``measure`` returns alignment, uniformity (of the L2-normalised features) and kNN accuracy.
- **Watching a loss work on the circle.** Training a ConvNet end to end for each of a dozen
  losses would take a class most of an hour on a CPU. So the trainable encoder here is a small
  MLP head on the *frozen* features of a fixed ConvNet (the lecture uses the untrained
  random-init encoder, so that all the learning is the head's): ``view_features`` runs the
  ConvNet once over several augmented views of each image and stores the features, and a
  training step (``train_head``) only runs the head. The pictures show what each loss does to an
  embedding, not how a ConvNet learns its filters.

Reference: T. Wang and P. Isola, "Understanding Contrastive Representation Learning through
Alignment and Uniformity on the Hypersphere", ICML 2020 (Figure 3 trains 2-D encoders on CIFAR-10).
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import color_jitter, random_grayscale, random_resized_crop, to_float
from .evaluate import accuracy, extract_features, knn_predict
from .hypersphere import alignment, uniformity


@dataclasses.dataclass(frozen=True)
class ViewRecipe:
    """How one view of an image is made: a random resized crop, then SimCLR's colour distortion.

    ``ViewRecipe()`` is SimCLR's CIFAR recipe, the same draws as ``augment.simclr_augment``.
    """

    crop_scale: tuple[float, float] | None = (0.08, 1.0)
    """Range of the crop's area as a fraction of the image (with a random flip); None: the whole
    image, unflipped."""
    strength: float = 0.5
    """s of the colour distortion (jitter 0.8s, 0.8s, 0.8s, 0.2s with p = 0.8; greyscale p = 0.2);
    0: none."""

    def __call__(self, images: torch.Tensor, generator=None) -> torch.Tensor:
        """(B, 3, H, W) uint8 or float -> one random view of each, float (B, 3, H, W) in [0, 1]."""
        x = to_float(images)
        if self.crop_scale is not None:
            x = random_resized_crop(x, scale=self.crop_scale, generator=generator)
        if self.strength > 0:
            s = self.strength
            x = color_jitter(x, 0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=0.8, generator=generator)
            x = random_grayscale(x, p=0.2, generator=generator)
        return x


SIMCLR_VIEWS = ViewRecipe()


@dataclasses.dataclass(frozen=True)
class MeasureSettings:
    """The measurement protocol of lecture 07: which images, how many, which views."""

    bank_images: int
    """Labelled training images in the kNN bank: the first ones, as ``evaluate.probe_data`` takes them."""
    test_images: int
    """Held-out images the kNN accuracy is reported on (the first ones of the test split)."""
    pair_images: int
    """Held-out images whose two views are the positive pairs of alignment and uniformity
    (uniformity keeps all N (N - 1) / 2 distances: a few thousand at most)."""
    knn_k: int
    """Neighbours of the weighted kNN vote (the profile's, as every kNN of the course)."""
    knn_temperature: float
    """Temperature of the kNN vote weights (the profile's)."""
    views: ViewRecipe = SIMCLR_VIEWS
    """The augmentation that makes the two views (the course's SimCLR recipe)."""
    seed: int = 0
    """Seed of the views' random draws: every encoder is measured on the very same views."""


def measure_settings(profile) -> MeasureSettings:
    """The protocol of a profile: its image counts and kNN settings (class: a few seconds per
    encoder on a 2-core CPU, 7,000 images through it)."""
    return MeasureSettings(bank_images=profile.measure_bank_images, test_images=profile.measure_test_images,
                           pair_images=profile.measure_pair_images, knn_k=profile.knn_k,
                           knn_temperature=profile.knn_temperature)


@dataclasses.dataclass
class Measured:
    """Tensors of the protocol, one row per image: images (uint8 or float), or an encoder's features.

    bank (N_b, ...), bank_labels (N_b,), test (N_t, ...), test_labels (N_t,), and views
    (N_p, 2, ...): two views of each pair image; ``settings``, the protocol they were made with.
    """

    bank: torch.Tensor
    bank_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    views: torch.Tensor
    settings: MeasureSettings

    def apply(self, function) -> "Measured":
        """The same protocol with ``function`` applied to every image or feature tensor."""
        N_p = len(self.views)
        views = function(self.views.flatten(0, 1)).unflatten(0, (N_p, 2))  # (N_p, 2, D)
        return Measured(function(self.bank), self.bank_labels, function(self.test), self.test_labels, views, self.settings)


def measurement_images(train_set, test_set, settings: MeasureSettings) -> Measured:
    """The protocol's images: kNN bank and test images (uint8) and seeded views (float)."""
    generator = torch.Generator(test_set.images.device).manual_seed(settings.seed)
    pairs = test_set.images[: settings.pair_images]
    views = torch.stack([settings.views(pairs, generator), settings.views(pairs, generator)], dim=1)  # (N_p, 2, 3, H, W)
    n_bank, n_test = settings.bank_images, settings.test_images
    return Measured(train_set.images[:n_bank], train_set.labels[:n_bank], test_set.images[:n_test],
                    test_set.labels[:n_test], views, settings)


@torch.no_grad()
def encoder_features(encoder, images: Measured) -> Measured:
    """A frozen encoder's pooled features (eval mode) of every image of the protocol, on the CPU."""
    return images.apply(lambda x: extract_features(encoder, x, batch_size=500).cpu())


@torch.no_grad()
def measure(features: Measured, num_classes: int = 10) -> dict:
    """Alignment (alpha = 2), uniformity (t = 2) and kNN accuracy of an encoder's features.

    The features are L2-normalised first, as the paper does. Uniformity is the mean over the two
    views, as in the paper's code; the kNN vote uses the protocol's settings (the profile's).
    Returns {"alignment", "uniformity", "knn"} as floats.
    """
    z1, z2 = F.normalize(features.views[:, 0].float(), dim=1), F.normalize(features.views[:, 1].float(), dim=1)
    settings = features.settings
    predicted = knn_predict(features.bank.float(), features.bank_labels, features.test.float(), num_classes,
                            settings.knn_k, settings.knn_temperature)
    return {
        "alignment": alignment(z1, z2).item(),
        "uniformity": ((uniformity(z1) + uniformity(z2)) / 2).item(),
        "knn": accuracy(predicted, features.test_labels),
    }


MEASURES_FILE = "sphere_measures.json"
"""Where ``measure_encoder`` keeps its results, beside the checkpoints (like ``probes.PROBES_FILE``)."""


def measure_protocol(settings: MeasureSettings) -> dict:
    """What a stored measurement measured: ``measure`` on ``encoder_features`` of the images of
    ``settings`` (counts, kNN settings, view recipe and seed); a table of another protocol is not read."""
    return {"measure": "sphere_demo.measure of sphere_demo.encoder_features (alignment alpha 2, uniformity t 2, weighted kNN)",
            "settings": repr(settings), "version": 1}


def measure_encoder(encoder, train_set, test_set, profile, save: bool = True) -> dict:
    """``measure(encoder_features(encoder, measurement_images(...)))`` for the profile's protocol,
    read from the stored table when these weights were measured on these images before (the
    store of ``sslteach.probes``: about 7,000 images through the encoder, a few seconds each on a
    laptop CPU, for every checkpoint of the course), else measured now. Returns
    {"alignment", "uniformity", "knn", "source"}; ``probes.source_note`` reads the source.

    The key is the protocol's uint8 images, not the views: views drawn on another device (other
    random draws from the same seed) read the same stored row."""
    from .probes import images_fingerprint, stored_or_measured

    settings = measure_settings(profile)
    n_bank, n_test = settings.bank_images, settings.test_images
    images = images_fingerprint(train_set.images[:n_bank], train_set.labels[:n_bank], test_set.images[:n_test],
                                test_set.labels[:n_test], test_set.images[: settings.pair_images])
    result, source = stored_or_measured(
        "sphere", encoder, train_set, test_set, profile,
        lambda: measure(encoder_features(encoder, measurement_images(train_set, test_set, settings))), save,
        images=images, file=MEASURES_FILE, protocol=measure_protocol(settings))
    return {**result, "source": source}


@torch.no_grad()
def view_features(encoder, images: torch.Tensor, recipe: ViewRecipe, views: int, generator=None) -> torch.Tensor:
    """The bank a head trains on: frozen features of ``views`` random views of every image.

    images (N, 3, H, W) -> features (N, V, D) on the CPU; each view draws its own augmentation.
    """
    return torch.stack([extract_features(encoder, recipe(images, generator), batch_size=500).cpu() for _ in range(views)], dim=1)


class SphereHead(nn.Module):
    """The trainable part: standardise frozen features, then Linear-ReLU-Linear to ``out_dim``.

    ``forward`` returns raw outputs (B, out_dim), which the losses normalise; ``embed`` returns
    the point on the unit sphere.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, out_dim: int = 2, hidden_dim: int = 256):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.mlp = nn.Sequential(nn.Linear(len(mean), hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp((features - self.mean) / self.std)

    @torch.no_grad()
    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) frozen features -> (B, out_dim) points on the unit sphere."""
        return F.normalize(self(features), dim=1)


@dataclasses.dataclass(frozen=True)
class HeadSettings:
    """Training of one head on a bank of frozen view features."""

    out_dim: int = 2
    """Dimension of the embedding: 2 puts it on a circle we can draw."""
    hidden_dim: int = 128
    """Width of the head's hidden layer."""
    steps: int = 200
    """Optimiser steps; each step is microseconds of work, the bank is already computed."""
    batch_size: int = 256
    """Images per step, each with two of its stored views: the B positive pairs."""
    lr: float = 3e-3
    """Adam's learning rate (Adam rather than SGD: a few hundred steps must be enough)."""
    seed: int = 0
    """Seeds the head's initial weights and the batches."""


def train_head(bank: torch.Tensor, loss_fn, settings: HeadSettings = HeadSettings(), snapshot_steps=(),
               probe: Measured | None = None, on_snapshot=None):
    """Train a ``SphereHead`` on positive pairs drawn from a bank of view features.

    Parameters
    ----------
    bank : (N, V, D) tensor
        Frozen features of V >= 2 views of N images (``view_features``).
    loss_fn : callable
        ``loss_fn(z1, z2) -> scalar`` on the head's raw outputs (B, out_dim) of the two views.
    snapshot_steps : iterable of int
        Steps (0 = before training, ``settings.steps`` = after) at which to embed ``probe``.
    probe : Measured, optional
        Frozen features of the measurement protocol (``encoder_features``); embedded at each
        snapshot step, so ``measure`` gives alignment, uniformity and kNN accuracy of the head.
    on_snapshot : callable, optional
        ``on_snapshot(step, embedded)`` at each snapshot: a live figure in class.

    Returns
    -------
    head : SphereHead, in eval mode
    history : {"loss": [per step], "snapshots": {step: embedded probe}}
    """
    N, V, D = bank.shape
    torch.manual_seed(settings.seed)  # the head's initial weights
    generator = torch.Generator().manual_seed(settings.seed)
    flat = bank.flatten(0, 1)  # (N V, D)
    head = SphereHead(flat.mean(0), flat.std(0) + 1e-6, settings.out_dim, settings.hidden_dim)
    optimizer = torch.optim.Adam(head.parameters(), lr=settings.lr)
    history = {"loss": [], "snapshots": {}}
    snapshot_steps = set(snapshot_steps)

    def snapshot(step):
        if probe is not None and step in snapshot_steps:
            history["snapshots"][step] = probe.apply(head.embed)
            if on_snapshot is not None:
                on_snapshot(step, history["snapshots"][step])

    for step in range(settings.steps):
        snapshot(step)
        index = torch.randint(N, (settings.batch_size,), generator=generator)  # (B,)
        first = torch.randint(V, (settings.batch_size,), generator=generator)
        second = (first + torch.randint(1, V, (settings.batch_size,), generator=generator)) % V  # another view
        loss = loss_fn(head(bank[index, first]), head(bank[index, second]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history["loss"].append(loss.item())
    snapshot(settings.steps)
    return head.eval(), history


def uniform_points(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """(n, dim) points uniform on the unit sphere: normalised Gaussians (seeded)."""
    return F.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=1)


@torch.no_grad()
def pair_alignment(encoder, views: torch.Tensor) -> float:
    """Alignment (alpha = 2) of a frozen encoder's normalised features on pairs of views (N, 2, 3, H, W)."""
    z = F.normalize(extract_features(encoder, views.flatten(0, 1), batch_size=500).cpu(), dim=1)  # (2N, D)
    z = z.unflatten(0, (len(views), 2))  # (N, 2, D)
    return alignment(z[:, 0], z[:, 1]).item()


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two equally long sequences of numbers (no ties expected)."""
    ranks = [torch.tensor(values, dtype=torch.float64).argsort().argsort().double() for values in (a, b)]
    return torch.corrcoef(torch.stack(ranks))[0, 1].item()
