"""Datasets for the course: CIFAR-10 (prepared once) and an always-available offline tier.

Typical use::

    from sslteach.data import data_fingerprint, load_images
    train = load_images("train")          # CIFAR-10 if prepared, else offline photo patches
    print(train.provenance["dataset"])    # "cifar10" or "offline-photos"
    data = data_fingerprint(train, load_images("test"))  # what a checkpoint trained on it records

Prepare CIFAR-10 with ``make data`` or ``python data_scripts/get_cifar10.py [--source PATH]``.
"""

from .cifar10 import (
    CIFAR10_MD5,
    CIFAR10_URL,
    CLASSES,
    SOURCE_ENV,
    DataError,
    DatasetMissingError,
    MixedPreparationError,
    download_cifar10,
    is_prepared,
    load_cifar10,
    prepare_cifar10,
)
from .fingerprint import (
    SHIPPED_DATA,
    data_fingerprint,
    describe_data,
    never_saw_test_images,
    trained_on_note,
)
from .photos import PHOTOS, load_images, offline_patches, offline_photos
from .store import ImageSet, data_dir, load_image_set, save_image_set

__all__ = [
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "CLASSES",
    "PHOTOS",
    "SHIPPED_DATA",
    "SOURCE_ENV",
    "DataError",
    "DatasetMissingError",
    "ImageSet",
    "MixedPreparationError",
    "data_dir",
    "data_fingerprint",
    "describe_data",
    "download_cifar10",
    "is_prepared",
    "load_cifar10",
    "load_image_set",
    "load_images",
    "never_saw_test_images",
    "offline_patches",
    "offline_photos",
    "prepare_cifar10",
    "save_image_set",
    "trained_on_note",
]
