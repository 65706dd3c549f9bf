"""Encoders: a small ConvNet for the class profile and a CIFAR ResNet-18 for the full profile.

Both take float images in [0, 1] of shape (B, 3, H, W), normalise them inside, and expose their
stages as ``encoder.blocks`` so a lecture can probe what each depth has learned
(``encoder.forward_blocks(x)``). ``encoder(x)`` returns the pooled feature vector (B, D).

The split-brain autoencoder needs a third kind, :class:`SplitEncoder` (``split-small``,
``split-resnet18``): two disjoint half-width networks, one on the lightness L and one on the
colour ab, whose stage outputs are concatenated. It has the same interface (``forward_blocks``,
``block_dims``, ``feature_dim``, pooled ``forward``), so every readout works on it unchanged.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock

from .colorization import split_lab

# Per-channel statistics of the CIFAR-10 training images, used to centre the inputs.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class Normalize(nn.Module):
    def __init__(self, mean=CIFAR10_MEAN, std=CIFAR10_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    # No conv bias: the BatchNorm right after it has its own shift.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class Encoder(nn.Module):
    """A stack of stages followed by global average pooling.

    Attributes
    ----------
    blocks : nn.ModuleList
        The stages, in order; ``forward_blocks`` returns each one's output.
    feature_dim : int
        D, the size of the pooled output of the last stage.
    block_dims : list of int
        Channels of each stage's output.
    """

    def __init__(self, blocks: list[nn.Module], block_dims: list[int]):
        super().__init__()
        self.normalize = Normalize()
        self.blocks = nn.ModuleList(blocks)
        self.block_dims = list(block_dims)
        self.feature_dim = block_dims[-1]

    def forward_blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) floats in [0, 1] -> list of (B, C_i, H_i, W_i), one per stage."""
        outputs = []
        h = self.normalize(x)
        for block in self.blocks:
            h = block(h)
            outputs.append(h)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) floats in [0, 1] -> (B, D) globally average-pooled features."""
        return self.forward_blocks(x)[-1].mean(dim=(2, 3))


def small_convnet_blocks(widths: tuple[int, ...], in_channels: int = 3) -> list[nn.Module]:
    """The stages of :func:`small_convnet`, without the input normalisation."""
    blocks = [conv_bn_relu(in_channels, widths[0])]
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        blocks.append(nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out)))
    return blocks


def small_convnet(widths: tuple[int, ...] = (32, 64, 128, 256)) -> Encoder:
    """The class-profile encoder: VGG-style stages of two 3x3 convolutions, halving resolution.

    Stage 1 works at 32x32 with a single convolution (full-resolution layers are the costly ones
    on a CPU); stages 2 and up each max-pool, then apply two conv-BN-ReLU layers. With the
    default widths a 32x32 image gives stage outputs 32x32x32, 64x16x16, 128x8x8 and 256x4x4.
    The widths were chosen by measurement (benchmarks/bench_core.py): about 86 MFLOP per image
    forward, and in channels-last layout the fastest per-accuracy of the sizes we tried on a
    2-core CPU.
    """
    return Encoder(small_convnet_blocks(widths), list(widths))


def resnet18_cifar() -> Encoder:
    """torchvision's ResNet-18 with the usual CIFAR stem: a 3x3 stride-1 convolution, no max-pool.

    The ImageNet stem (7x7 stride 2 and a max-pool) would shrink a 32x32 image to 8x8 before the
    first residual stage and cost several points of accuracy on CIFAR-10.
    """
    net = torchvision.models.resnet18(weights=None)
    stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
    blocks = [nn.Sequential(stem, net.layer1), net.layer2, net.layer3, net.layer4]
    return Encoder(blocks, [64, 128, 256, 512])


def resnet18_cifar_blocks(widths: tuple[int, ...], in_channels: int = 3) -> list[nn.Module]:
    """The four stages of a CIFAR ResNet-18 (two BasicBlocks each) with the given widths, built
    from torchvision's BasicBlock: (64, 128, 256, 512) is :func:`resnet18_cifar`'s layout."""
    stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
    blocks, c_in = [], widths[0]
    for i, width in enumerate(widths):
        stride = 1 if i == 0 else 2
        shortcut = None
        if stride != 1 or c_in != width:  # a 1x1 projection where the shape changes, as in torchvision
            shortcut = nn.Sequential(nn.Conv2d(c_in, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
        stage = nn.Sequential(BasicBlock(c_in, width, stride, shortcut), BasicBlock(width, width))
        blocks.append(nn.Sequential(stem, stage) if i == 0 else stage)
        c_in = width
    return blocks


class SplitEncoder(nn.Module):
    """Two disjoint encoders side by side: one sees only L, the other only ab (Zhang et al. 2017).

    Takes RGB floats in [0, 1], converts them to Lab inside, and feeds (L - 50) / 100 to the
    lightness half and ab / 110 to the colour half (the scaling of the colorization port). No
    weight connects the halves: stage i's output is the channel concatenation
    ``[lightness_i, colour_i]``, so ``block_dims`` and ``feature_dim`` are the sums of the halves'.
    With half-width halves a split encoder has the layout of the full one at about half its
    compute (each convolution has half the inputs and half the outputs: a quarter, twice).

    Attributes
    ----------
    lightness, colour : nn.ModuleList
        The stages of each half.
    block_dims : list of int
        Channels of each stage's concatenated output.
    feature_dim : int
        D, the size of the pooled output of the last stage.
    """

    def __init__(self, lightness: list[nn.Module], colour: list[nn.Module], half_dims: list[int]):
        super().__init__()
        self.lightness = nn.ModuleList(lightness)
        self.colour = nn.ModuleList(colour)
        self.half_dims = list(half_dims)
        self.block_dims = [2 * d for d in half_dims]
        self.feature_dim = self.block_dims[-1]

    @staticmethod
    def split_input(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) RGB in [0, 1] -> the halves' inputs (B, 1, H, W) and (B, 2, H, W), about unit scale."""
        with torch.autocast(x.device.type, enabled=False):  # Lab in bfloat16 is off by about one unit
            L_input, ab = split_lab(x.float())  # (B, 1, H, W) = (L - 50) / 100, (B, 2, H, W) in Lab units
        return L_input, ab / 110

    def forward_halves(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(B, 3, H, W) in [0, 1] -> per stage, (lightness half (B, C_i / 2, H_i, W_i), colour half (same))."""
        return self.forward_split(*self.split_input(x))

    def forward_split(self, L_input: torch.Tensor, ab_input: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The halves on their own inputs, (B, 1, H, W) and (B, 2, H, W) from :meth:`split_input`:
        per stage, (lightness half's output, colour half's output). Each depends on its input only."""
        h_light, h_colour = L_input, ab_input
        outputs = []
        for light_block, colour_block in zip(self.lightness, self.colour):
            h_light, h_colour = light_block(h_light), colour_block(h_colour)
            outputs.append((h_light, h_colour))
        return outputs

    def forward_blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) floats in [0, 1] -> list of (B, C_i, H_i, W_i), each half's channels in turn."""
        return [torch.cat(halves, dim=1) for halves in self.forward_halves(x)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) floats in [0, 1] -> (B, D) globally average-pooled features of both halves."""
        return self.forward_blocks(x)[-1].mean(dim=(2, 3))


def split_encoder(name: str) -> SplitEncoder:
    """The split version of encoder ``name`` (``small`` or ``resnet18``): two halves of half its
    widths, on L (1 channel) and on ab (2 channels)."""
    if name == "small":
        widths, make = (16, 32, 64, 128), small_convnet_blocks
    elif name == "resnet18":
        widths, make = (32, 64, 128, 256), resnet18_cifar_blocks
    else:
        raise ValueError(f"no split version of encoder {name!r}")
    return SplitEncoder(make(widths, in_channels=1), make(widths, in_channels=2), list(widths))


ENCODER_NAMES = ("small", "resnet18", "split-small", "split-resnet18")


def build_encoder(name: str) -> Encoder | SplitEncoder:
    """One of ``ENCODER_NAMES``, as named by a profile or stored in a checkpoint: ``small``,
    ``resnet18``, or ``split-<either>`` for the split-brain autoencoder's pair of half-width networks."""
    if name == "small":
        return small_convnet()
    if name == "resnet18":
        return resnet18_cifar()
    if name.startswith("split-"):
        return split_encoder(name.removeprefix("split-"))
    raise ValueError(f"unknown encoder {name!r}; choose one of {ENCODER_NAMES}")
