"""An offline tier that always works: patches of real photographs shipped with scikit-image.

CIFAR-10 has to be fetched once; these photographs come with ``scikit-image`` itself, so
every example in the course still runs on a machine that has never been online. The
patches are *not* CIFAR-10: their labels say which photograph a patch came from, and
``provenance["dataset"] == "offline-photos"`` marks them so no result is mistaken for a
CIFAR-10 number.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import skimage.data
import torch
from skimage.transform import resize

from .cifar10 import DatasetMissingError, load_cifar10
from .store import ImageSet

#: Photo name -> one-line credit, taken from the ``skimage.data`` docstrings. All ship inside
#: the scikit-image wheel (no download) and are public domain, CC0 or free of known restrictions.
PHOTOS = {
    "astronaut": "Eileen Collins, NASA Great Images database; public domain",
    "chelsea": "Chelsea the cat, photo by Stefan van der Walt; CC0",
    "coffee": "Coffee cup, photo by Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0",
    "rocket": "Falcon 9 launching DSCOVR, SpaceX Photos; public domain",
    "hubble_deep_field": "Hubble eXtreme Deep Field, NASA / HubbleSite; public domain",
    "immunohistochemistry": "IHC-stained colonic glands, Center for Microscopy And "
    "Molecular Imaging (CMMI); no known copyright restrictions",
}

OFFLINE_NOTE = "offline tier: patches of scikit-image sample photographs, NOT CIFAR-10"

#: Patches per split that :func:`load_images` returns when CIFAR-10 is missing.
OFFLINE_SIZES = {"train": 10_000, "test": 2_000}


@functools.lru_cache(maxsize=1)
def _native() -> dict[str, np.ndarray]:
    """The photos as read-only uint8 arrays (H, W, 3), loaded once per process."""
    photos = {}
    for name in PHOTOS:
        image = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
        image.flags.writeable = False  # shared cache: callers get copies
        photos[name] = image
    return photos


def offline_photos() -> dict[str, torch.Tensor]:
    """The sample photographs at native resolution.

    Returns
    -------
    dict of str to torch.Tensor
        Photo name -> uint8 tensor (3, H, W), RGB; fresh copies the caller may modify.
    """
    return {name: torch.from_numpy(im.transpose(2, 0, 1).copy()) for name, im in _native().items()}


@functools.lru_cache(maxsize=4)
def _downscaled(short_side: int) -> tuple[torch.Tensor, ...]:
    """Each photo resized so its shorter side is ``short_side``; uint8 tensors (3, h, w).

    At native size a 32x32 patch shows only a flat bit of sky or skin; at ~100 px the
    patch holds an eye, a rim of the cup, a flame: something a network can learn from.
    """
    out = []
    for image in _native().values():
        h, w = image.shape[:2]
        scale = short_side / min(h, w)
        shape = (round(h * scale), round(w * scale))
        # anti_aliasing low-pass filters first, so shrinking does not alias fine texture.
        small = resize(image, shape, anti_aliasing=True, preserve_range=True)
        out.append(torch.from_numpy(np.rint(small).astype(np.uint8).transpose(2, 0, 1).copy()))
    return tuple(out)


def offline_patches(
    n: int = 10_000, size: int = 32, seed: int = 0, short_side: int = 112
) -> ImageSet:
    """Random ``size`` x ``size`` patches of the downscaled sample photographs.

    Parameters
    ----------
    n : int
        Number of patches; classes are balanced to within one patch.
    size : int
        Patch side in pixels (32 matches CIFAR-10).
    seed : int
        The same seed always gives the same patches.
    short_side : int
        Shorter side, in pixels, each photo is resized to before cutting patches.

    Returns
    -------
    ImageSet
        images (n, 3, size, size) uint8, labels (n,) int64 = photo index,
        classes = photo names, provenance marked ``"offline-photos"``.
    """
    if size > short_side:
        raise ValueError(f"patch size {size} exceeds the photos' shorter side {short_side}")
    photos = _downscaled(short_side)
    generator = torch.Generator().manual_seed(seed)
    # Balanced labels in random order: arange(n) % k, shuffled.
    labels = (torch.arange(n) % len(photos))[torch.randperm(n, generator=generator)]
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    offsets = torch.arange(size)
    for label, photo in enumerate(photos):  # one vectorised gather per photo, not per patch
        idx = (labels == label).nonzero().flatten()
        _, h, w = photo.shape
        top = torch.randint(0, h - size + 1, (len(idx),), generator=generator)
        left = torch.randint(0, w - size + 1, (len(idx),), generator=generator)
        rows = (top[:, None] + offsets)[:, :, None]  # (m, size, 1)
        cols = (left[:, None] + offsets)[:, None, :]  # (m, 1, size)
        images[idx] = photo[:, rows, cols].permute(1, 0, 2, 3)  # (3, m, s, s) -> (m, 3, s, s)
    provenance = {
        "dataset": "offline-photos",
        "note": OFFLINE_NOTE,
        "credits": [f"{name}: {credit}" for name, credit in PHOTOS.items()],
        "n": n, "size": size, "seed": seed, "short_side": short_side,
    }
    return ImageSet(images, labels, list(PHOTOS), provenance)


def load_images(split: str = "train", data_dir: str | Path | None = None,
                allow_offline: bool = True) -> ImageSet:
    """CIFAR-10 if it is prepared, else (if allowed) the offline photo patches.

    Check ``images.provenance["dataset"]``: ``"cifar10"`` or ``"offline-photos"``.

    Parameters
    ----------
    split : {"train", "test"}
        Which split. Offline, train and test use different seeds (0 and 1).
    data_dir : str or Path, optional
        Data folder; default ``$SSLTEACH_DATA`` or ``<repo>/data``.
    allow_offline : bool
        If False, raise :class:`DatasetMissingError` instead of falling back. A half-written
        or mixed preparation is never replaced by the offline tier: it raises
        :class:`~sslteach.data.cifar10.MixedPreparationError`, so train and test cannot come
        from two different datasets.

    Returns
    -------
    ImageSet
        Images (N, 3, 32, 32) uint8 and labels (N,) int64.
    """
    try:
        return load_cifar10(split, data_dir)
    except DatasetMissingError:
        if not allow_offline:
            raise
    images = offline_patches(OFFLINE_SIZES[split], seed=("train", "test").index(split))
    provenance = images.provenance | {"split": split}
    return ImageSet(images.images, images.labels, images.classes, provenance)
