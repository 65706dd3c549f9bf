"""The methods the course trains: one table, one way to pretrain, one way to load or train.

Each method's pretrain function lives next to its loss, in the method's own module
(``sslteach.rotation.pretrain_rotation``, ``sslteach.simclr.pretrain_simclr``, ...), together with
the function that rebuilds its trained network from a checkpoint. Every pretrain function takes
a fresh encoder on the device (the profile's; for split-brain its split version, see
:func:`encoder_name`) and returns (head weights or None, history, extra checkpoint
entries); it trains the encoder in place, with the budget of the profile: the same number of
optimiser steps, with the same number of images through the encoder per step.

``python -m sslteach.train`` is the command line over this table; the lectures call
:func:`load_or_pretrain`.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import json

import torch

from .baselines import pretrain_random_init, pretrain_supervised, pretrain_supervised_few_labels
from .checkpoint import checkpoint_path, find_checkpoint, is_same_run, save_checkpoint
from .clustering import pretrain_deepcluster
from .colorizer import pretrain_colorization, pretrain_colorization_regression
from .context import CONTEXT_ABERRATION, CONTEXT_ABERRATION_DROPPING, CONTEXT_NO_GAP, pretrain_context
from .device import seed_everything
from .encoders import build_encoder
from .inpainting import pretrain_inpainting
from .jigsaw import pretrain_jigsaw
from .moco import pretrain_moco
from .npid import pretrain_npid
from .pirl import pretrain_pirl
from .profiles import Profile
from .rotation import pretrain_rotation
from .simclr import pretrain_simclr, pretrain_simclr_no_color
from .splitbrain import pretrain_split_brain
from .swav import SwAVSettings, pretrain_swav

PRETRAINERS = {
    "rotation": pretrain_rotation,
    "supervised": pretrain_supervised,
    "random-init": pretrain_random_init,
    "colorization": pretrain_colorization,
    "colorization-regression": pretrain_colorization_regression,
    "inpainting": pretrain_inpainting,
    "split-brain": pretrain_split_brain,
    "simclr": pretrain_simclr,
    "simclr-no-color": pretrain_simclr_no_color,
    "swav": pretrain_swav,
    "deepcluster": pretrain_deepcluster,
    "npid": pretrain_npid,
    "moco": pretrain_moco,
    "pirl": pretrain_pirl,
    "context": pretrain_context,
    "context-nogap": functools.partial(pretrain_context, task=CONTEXT_NO_GAP),
    "context-aberration": functools.partial(pretrain_context, task=CONTEXT_ABERRATION),
    "context-aberration-dropping": functools.partial(pretrain_context, task=CONTEXT_ABERRATION_DROPPING),
    "jigsaw": pretrain_jigsaw,
    "jigsaw-10": functools.partial(pretrain_jigsaw, count=10),
    "jigsaw-1000": functools.partial(pretrain_jigsaw, count=1000),
}
METHODS = tuple(PRETRAINERS)
"""The methods the lectures load and the course table measures."""

REFERENCES = {
    "supervised-1pct": functools.partial(pretrain_supervised_few_labels, fraction=0.01),
    "supervised-10pct": functools.partial(pretrain_supervised_few_labels, fraction=0.1),
}
"""Label-efficiency references, trained by the same command (``python -m sslteach.train
supervised-1pct``) and read in the headline table only: the supervised baseline from scratch on
1% or 10% of the labels (``sslteach.baselines.pretrain_supervised_few_labels``)."""
PRETRAINERS |= REFERENCES
TRAINABLE = METHODS + tuple(REFERENCES)


def encoder_name(method: str, profile: Profile) -> str:
    """The encoder ``method`` trains: the profile's, except for split-brain, which trains the split
    version of it (``split-small``: two disjoint half-width networks, on L and on ab; see
    ``sslteach.encoders.SplitEncoder``). The name is stored in the checkpoint, so every readout
    rebuilds the right network with ``sslteach.checkpoint.encoder_from_checkpoint``."""
    return f"split-{profile.encoder}" if method == "split-brain" else profile.encoder


STANDARD_PARAMETERS = ("encoder", "images", "labels", "profile", "num_classes", "seed")
"""What every pretrain function takes; its other parameters are the method's recipe."""


def method_recipe(method: str, options: dict | None = None) -> dict:
    """Every setting of ``method``'s recipe, with ``options`` (keyword arguments for
    :func:`pretrain`) in place of the defaults they change; settings dataclasses as dicts.

    Stored in each checkpoint as ``checkpoint["recipe"]``, so that a checkpoint trained with
    another recipe (an earlier default, a sweep's change) is not taken for this method's run
    (``sslteach.checkpoint.is_same_run``)."""
    options = options or {}
    recipe = {}
    for name, parameter in inspect.signature(PRETRAINERS[method]).parameters.items():
        if name not in STANDARD_PARAMETERS:
            value = options.get(name, parameter.default)
            recipe[name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return recipe


def as_stored(recipe: dict) -> dict:
    """``recipe`` as a JSON table stores it (tuples become lists), to compare with a recipe read
    back from one (a headline or ladder row, a sweep line)."""
    return json.loads(json.dumps(recipe))


def stored_recipe(method: str, options: dict | None = None) -> dict:
    """:func:`method_recipe` as a JSON table stores it (:func:`as_stored`)."""
    return as_stored(method_recipe(method, options))


UNRECORDED_RECIPES = {
    "swav": method_recipe("swav", {"settings": SwAVSettings(temperature=0.1)}),
}
"""The methods whose recipe changed after checkpoints began to record theirs, with the recipe
their unrecorded checkpoints were trained with: such a file (one a student trained before the
change, in ``data/checkpoints``) is the old recipe's run, not the new one's. SwAV's temperature
went from 0.1 to 0.2 after the class sweep (``sslteach.swav.SwAVSettings``)."""


def unrecorded_recipe(method: str) -> dict:
    """The recipe a checkpoint of ``method`` that records none was trained with: today's, unless
    the method is in :data:`UNRECORDED_RECIPES`."""
    return UNRECORDED_RECIPES.get(method) or method_recipe(method)


def is_method_run(checkpoint: dict, method: str, profile: Profile, seed: int) -> bool:
    """Whether ``checkpoint`` is ``method`` trained with ``profile``, ``seed`` and the method's
    current recipe: ``sslteach.checkpoint.is_same_run`` with :func:`method_recipe` and
    :func:`unrecorded_recipe`."""
    return is_same_run(checkpoint, method, profile, seed, method_recipe(method), unrecorded_recipe(method))


def pretrain(method: str, images, labels, profile: Profile, num_classes: int = 10, seed: int = 0,
             data: dict | None = None, **options) -> dict:
    """Run one method on ``images`` (N, 3, H, W) uint8 on the device, labels (N,), and return a
    checkpoint dict.

    ``data`` is the fingerprint of the prepared data the images come from
    (``sslteach.data.data_fingerprint``); it is stored as ``checkpoint["data"]``, None when the
    caller does not say (random test images, say), so that whoever loads the weights can tell
    what they were trained on. It does not change the training.

    ``options`` go to the method's pretrain function as keyword arguments, to try other
    settings than its recipe (``settings=SwAVSettings(prototypes=30)``, ``count=1000``): the
    checkpoint records them under ``"options"`` (settings dataclasses as dicts).
    """
    if method not in PRETRAINERS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    seed_everything(seed)
    encoder = build_encoder(encoder_name(method, profile)).to(images.device, memory_format=torch.channels_last)
    head_state, history, extras = PRETRAINERS[method](encoder, images, labels, profile, num_classes, seed, **options)
    if options:
        extras = {**extras, "options": {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in options.items()}}
    encoder.eval()
    return {
        "method": method,
        "profile": profile.name,
        "profile_settings": dataclasses.asdict(profile),
        "encoder_name": encoder_name(method, profile),
        "encoder": encoder.state_dict(),
        "head": head_state,
        "seed": seed,
        "recipe": method_recipe(method, options),
        "history": history,
        "data": data,
        **extras,
    }


def find_run(method: str, profile: Profile, seed: int = 0, path=None) -> dict | None:
    """The checkpoint of ``method`` trained with ``profile``, ``seed`` and the method's current
    recipe, without training: ``sslteach.checkpoint.find_checkpoint`` with
    :func:`method_recipe` and :func:`unrecorded_recipe`. None if there is none."""
    return find_checkpoint(method, profile, seed, path, recipe=method_recipe(method),
                           unrecorded=unrecorded_recipe(method))


def load_or_pretrain(method: str, images, labels, profile: Profile, seed: int = 0, path=None,
                     data: dict | None = None) -> dict:
    """The lectures' pattern: load the checkpoint of this exact run (:func:`find_run`:
    ``data/checkpoints/<profile>/``, then the course's shipped ones), else train and save it at
    ``path`` (default :func:`checkpoint_path`); ``checkpoint["source"]`` is then "trained".

    ``data``, the fingerprint of the images (``sslteach.data.data_fingerprint``), is recorded
    when training. A checkpoint trained on other data is still loaded (the shipped ones were
    trained on the course's carved split): ``checkpoint["data"]`` says what it was trained on, and
    ``sslteach.data.trained_on_note(checkpoint["data"], data)`` whether that is fair to ``data``.
    """
    checkpoint = find_run(method, profile, seed, path)
    if checkpoint is not None:
        return checkpoint
    checkpoint = pretrain(method, images, labels, profile, seed=seed, data=data)
    save_checkpoint(path if path is not None else checkpoint_path(method, profile, seed), checkpoint)
    checkpoint["source"] = "trained"
    return checkpoint
