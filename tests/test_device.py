"""Tests of sslteach.device and sslteach.profiles: device choice, seeding, profile lookup."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

from sslteach.device import DEVICE_ENV, device_summary, pick_device, seed_everything
from sslteach.profiles import CLASS, FULL, PROFILE_ENV, PROFILES, get_profile


def test_pick_device_honours_environment(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert pick_device() == torch.device("cpu")


def test_argument_beats_environment(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    assert pick_device("cpu") == torch.device("cpu")


def test_default_is_an_available_device(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    device = pick_device()
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert device.type == expected
    assert isinstance(device_summary(device), str)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_cuda_request_without_cuda_raises(monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv(DEVICE_ENV, "cuda")
        request = None
    else:
        monkeypatch.delenv(DEVICE_ENV, raising=False)
        request = "cuda:0"
    with pytest.raises(RuntimeError, match="CUDA"):
        pick_device(request)


def test_seed_everything_repeats_all_generators():
    g1 = seed_everything(123)
    first = (torch.rand(5), np.random.rand(3), random.random(), torch.rand(2, generator=g1))
    g2 = seed_everything(123)
    second = (torch.rand(5), np.random.rand(3), random.random(), torch.rand(2, generator=g2))
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2]
    assert torch.equal(first[3], second[3])
    seed_everything(124)
    assert not torch.equal(torch.rand(5), first[0])


def test_get_profile_reads_environment(monkeypatch):
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert get_profile() is CLASS
    monkeypatch.setenv(PROFILE_ENV, "full")
    assert get_profile() is FULL
    assert get_profile("class") is CLASS  # an explicit name wins


def test_get_profile_rejects_unknown_names(monkeypatch):
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        get_profile("gpu")
    monkeypatch.setenv(PROFILE_ENV, "laptop")
    with pytest.raises(ValueError, match="laptop"):
        get_profile()


@pytest.mark.parametrize("profile", [CLASS, FULL], ids=["class", "full"])
def test_profiles_are_frozen(profile):
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.steps = 1
    changed = dataclasses.replace(profile, steps=1)
    assert changed.steps == 1 and profile.steps != 1


@pytest.mark.parametrize("profile", [CLASS, FULL], ids=["class", "full"])
def test_profiles_are_consistent(profile):
    assert PROFILES[profile.name] is profile
    assert profile.encoder in ("small", "resnet18")
    assert profile.batch_size % 4 == 0  # rotation puts 4 rotations of batch / 4 images in a step
    assert 0 < profile.warmup_steps < profile.steps
    assert profile.lr > 0 and profile.weight_decay >= 0
