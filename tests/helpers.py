"""Inputs shared by the unit tests: random images and tiny training budgets."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import torch

from sslteach.profiles import CLASS, Profile


def random_images(N: int = 32, S: int = 32, seed: int = 0) -> torch.Tensor:
    """N random uint8 images (N, 3, S, S), as the datasets store them."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (N, 3, S, S), dtype=torch.uint8, generator=g)


def random_float_images(B: int = 4, S: int = 32, seed: int = 0) -> torch.Tensor:
    """B random float images (B, 3, S, S) in [0, 1), as the augmentations return them."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 3, S, S, generator=g)


def tiny_profile(steps: int = 2, batch_size: int = 16, base: Profile = CLASS) -> Profile:
    """``base`` cut to a few steps of a small batch: enough to run a method's whole loop."""
    return dataclasses.replace(base, steps=steps, batch_size=batch_size, warmup_steps=1)


def load_tool(name: str):
    """The module tools/<name>.py (the tools are scripts, not a package)."""
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules[name]
