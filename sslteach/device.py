"""Where tensors live and how runs are made repeatable.

Every notebook starts with ``device = pick_device()`` and ``seed_everything(0)``, so a rerun on
the same machine stores the same outputs (nbval compares them).
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV = "SSLTEACH_DEVICE"


class DeviceError(RuntimeError):
    """The device asked for does not exist on this machine."""


def pick_device(preferred: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then the CPU.

    Parameters
    ----------
    preferred : str, optional
        A device string such as ``"cpu"`` or ``"cuda:1"``. Defaults to the environment variable
        ``SSLTEACH_DEVICE`` when set, so a class can force the CPU on machines with a GPU.
    """
    # Name where the request came from: blaming the environment for an argument misleads.
    asked = f"device {preferred!r}" if preferred else f"{DEVICE_ENV}={os.environ.get(DEVICE_ENV)!r}"
    preferred = preferred or os.environ.get(DEVICE_ENV)
    if preferred:
        try:
            device = torch.device(preferred)
        except RuntimeError:  # torch's own text lists twenty device types
            raise DeviceError(f"{asked} is not a device; use cpu, cuda, cuda:1 or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise DeviceError(f"{asked} asks for CUDA, but CUDA is not available: torch sees no GPU")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise DeviceError(f"{asked} asks for MPS, which is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded the same way.

    CPU kernels in torch are deterministic for a fixed thread count, so a notebook rerun on one
    machine repeats its numbers exactly. GPUs and other torch releases may differ in the last
    digits, which is why notebooks check learned results with a tolerance.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def device_summary(device: torch.device) -> str:
    """One line naming the device, for the first cell of each notebook."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
