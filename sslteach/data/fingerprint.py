"""What a result was made from: the fingerprint of prepared data, and what two fingerprints mean.

Every checkpoint (``sslteach.methods.pretrain``) and every course table
(``sslteach.transfer.table_settings``) records the fingerprint of the data it was trained or
measured on: a small dict of plain values taken from the data's provenance,

    {"dataset": "cifar10", "source_kind": "image archive", "source_md5": "7c83f0f9...",
     "test_split": "carved: 1000 per class from train, seed 0",
     "train_images": 40000, "test_images": 10000}

Preparing the same source again gives the same fingerprint (the split and the order are fixed by
seeds), so the date and the preparation id are left out; so is the source's path, which differs
from machine to machine while its checksum does not.

Weights trained on one data set are used on another: the checkpoints that ship with the course
were trained on :data:`SHIPPED_DATA` and load on any prepared CIFAR-10. Whether that is fair
depends on the test split (:func:`never_saw_test_images`): the official test set is in no
training split the course prepares, a carved test split is only safe from weights trained on
that very split.
"""

from __future__ import annotations

from .store import ImageSet

FINGERPRINT_FIELDS = ("dataset", "source_kind", "source_md5", "test_split", "train_images", "test_images")
"""The keys of a fingerprint, in the order :func:`describe_data` reads them."""

OFFICIAL_TEST_SPLIT = "official test set"
"""The ``test_split`` of data prepared from the official archive: CIFAR-10's 10,000 test images."""

SHIPPED_DATA = {
    "dataset": "cifar10",
    "source_kind": "image archive",
    "source_md5": "7c83f0f9d47e6744bebc5f6bd1721138",
    "test_split": "carved: 1000 per class from train, seed 0",
    "train_images": 40_000,
    "test_images": 10_000,
}
"""The data of the checkpoints and the course table that ship with the course (their files predate
fingerprints and do not record it; checkpoints/README.md): CIFAR-10's 50,000 training images as
JPEGs in class folders (the archive CI prepares, ``cifar10-train-jpeg.tar.gz``), of which 1,000 per
class were carved out as the test split. They never trained on a CIFAR-10 test image."""


def data_fingerprint(train: ImageSet, test: ImageSet) -> dict:
    """The fingerprint of a train and a test split: where they came from, how the test split was
    made, and how many images each holds.

    Parameters
    ----------
    train, test : ImageSet
        The splits as loaded (``sslteach.data.load_images``): images (N, 3, H, W) and (M, 3, H, W).

    Returns
    -------
    dict
        The keys of :data:`FINGERPRINT_FIELDS`: ``dataset``, ``source_kind`` and ``source_md5``
        (None where the provenance has none: a folder source has no single checksum, the offline
        photo patches have no source), ``test_split`` (None for the offline tier), and the image
        counts N and M. Plain values only, so it can be stored in a checkpoint or a JSON table.
    """
    provenance = train.provenance
    return {
        "dataset": provenance.get("dataset"),
        "source_kind": provenance.get("source_kind"),
        "source_md5": provenance.get("source_md5"),
        "test_split": test.provenance.get("test_split"),
        "train_images": len(train),
        "test_images": len(test),
    }


def describe_data(fingerprint: dict | None) -> str:
    """One line that says what data a fingerprint stands for (None: "unknown data").

    >>> describe_data(SHIPPED_DATA)
    'CIFAR-10 from an image archive (MD5 7c83f0f9...), 40,000 train / 10,000 test images, test split carved: 1000 per class from train, seed 0 (the data of the shipped checkpoints)'
    >>> describe_data(None)
    'unknown data (not recorded)'
    """
    if fingerprint is None:
        return "unknown data (not recorded)"
    counts = f"{fingerprint.get('train_images', 0):,} train / {fingerprint.get('test_images', 0):,} test images"
    if fingerprint.get("dataset") != "cifar10":
        return f"{fingerprint.get('dataset') or 'unknown data'} (not CIFAR-10), {counts}"
    kind = fingerprint.get("source_kind") or "an unrecorded source"
    article = "an" if kind[0] in "aeiou" else "a"
    md5 = fingerprint.get("source_md5")
    source = f"{article} {kind}" + (f" (MD5 {md5[:8]}...)" if md5 else "")
    text = f"CIFAR-10 from {source}, {counts}, test split {fingerprint.get('test_split') or 'unrecorded'}"
    return text + (" (the data of the shipped checkpoints)" if fingerprint == SHIPPED_DATA else "")


def never_saw_test_images(trained_on: dict | None, data: dict) -> bool:
    """Whether weights trained on ``trained_on`` can never have seen a test image of ``data``.

    True when both fingerprints are equal (a prepared test split is disjoint from its own train
    split), or when ``data``'s test split is CIFAR-10's official test set and the weights were
    trained on CIFAR-10: every source the course prepares trains only on CIFAR-10's training images
    (the official archive's training batches; an image source's ``train/`` folders, which the
    course expects to hold those). False otherwise: weights trained on all 50,000 training images
    have seen the images a carved test split holds out, and a carved split of another source
    may hold out other images. Unknown training data (None) is never promised to be safe.
    """
    if trained_on is None:
        return False
    if trained_on == data:
        return True
    return data.get("test_split") == OFFICIAL_TEST_SPLIT and trained_on.get("dataset") == "cifar10" == data.get("dataset")


def trained_on_note(trained_on: dict | None, data: dict) -> str:
    """One line for a lecture: what weights were trained on, and whether their numbers on ``data``
    (the fingerprint of the images in use) are fair.

    >>> trained_on_note(SHIPPED_DATA, SHIPPED_DATA)
    'trained on your data'
    >>> official = {**SHIPPED_DATA, "source_kind": "official archive", "test_split": "official test set",
    ...             "source_md5": "c58f30108f718f92721af3b95e74349a", "train_images": 50_000}
    >>> trained_on_note(SHIPPED_DATA, official)[:71]
    'trained on other data than yours, but never on one of your test images:'
    >>> trained_on_note(official, SHIPPED_DATA)[:9]
    'WARNING: '
    """
    if trained_on == data:
        return "trained on your data"
    if never_saw_test_images(trained_on, data):
        return (f"trained on other data than yours, but never on one of your test images: "
                f"{describe_data(trained_on)}")
    return (f"WARNING: trained on other data, which may include your test images, so the numbers may be "
            f"too good (SSLTEACH_RETRAIN=1 trains on yours): {describe_data(trained_on)}")
