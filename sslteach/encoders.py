"""Encoders: a small ConvNet for the class profile and a CIFAR ResNet-18 for the full profile.

Both take float images in [0, 1] of shape (B, 3, H, W), normalise them inside, and expose their
stages as ``encoder.blocks`` so a lecture can probe what each depth has learned
(``encoder.forward_blocks(x)``). ``encoder(x)`` returns the pooled feature vector (B, D).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision

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


def small_convnet(widths: tuple[int, ...] = (32, 64, 128, 256)) -> Encoder:
    """The class-profile encoder: VGG-style stages of two 3x3 convolutions, halving resolution.

    Stage 1 works at 32x32 with a single convolution (full-resolution layers are the costly ones
    on a CPU); stages 2 and up each max-pool, then apply two conv-BN-ReLU layers. With the
    default widths a 32x32 image gives stage outputs 32x32x32, 64x16x16, 128x8x8 and 256x4x4.
    The widths were chosen by measurement (benchmarks/bench_core.py): about 86 MFLOP per image
    forward, and in channels-last layout the fastest per-accuracy of the sizes we tried on a
    2-core CPU.
    """
    blocks = [conv_bn_relu(3, widths[0])]
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        blocks.append(nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out)))
    return Encoder(blocks, list(widths))


def resnet18_cifar() -> Encoder:
    """torchvision's ResNet-18 with the usual CIFAR stem: a 3x3 stride-1 convolution, no max-pool.

    The ImageNet stem (7x7 stride 2 and a max-pool) would shrink a 32x32 image to 8x8 before the
    first residual stage and cost several points of accuracy on CIFAR-10.
    """
    net = torchvision.models.resnet18(weights=None)
    stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
    blocks = [nn.Sequential(stem, net.layer1), net.layer2, net.layer3, net.layer4]
    return Encoder(blocks, [64, 128, 256, 512])


def build_encoder(name: str) -> Encoder:
    """``small`` or ``resnet18``, as named by a profile or stored in a checkpoint."""
    if name == "small":
        return small_convnet()
    if name == "resnet18":
        return resnet18_cifar()
    raise ValueError(f"unknown encoder {name!r}; choose 'small' or 'resnet18'")
