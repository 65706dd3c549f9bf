"""The GPU path: the same code on CUDA, compared with the CPU. Skipped where there is no GPU."""
import dataclasses

import pytest
import torch

from sslteach.augment import random_crop_flip, simclr_augment
from sslteach.encoders import build_encoder
from sslteach.evaluate import evaluate_features, extract_features, knn_predict
from sslteach.profiles import CLASS, FULL
from sslteach.methods import pretrain

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_augmentations_run_on_the_gpu_with_a_gpu_generator():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, device="cuda")
    g = torch.Generator("cuda").manual_seed(0)
    assert random_crop_flip(x, generator=g).device.type == "cuda"
    y = simclr_augment(x, generator=g)
    assert y.device.type == "cuda" and 0 <= y.min() and y.max() <= 1


@cuda
@pytest.mark.parametrize("profile", [CLASS, FULL], ids=["class", "full"])
def test_pretrain_on_the_gpu(profile):
    profile = dataclasses.replace(profile, steps=3, batch_size=64, warmup_steps=1)
    images = torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8, device="cuda")
    labels = torch.randint(0, 10, (256,), device="cuda")
    for method in ("rotation", "supervised", "random-init"):
        checkpoint = pretrain(method, images, labels, profile)
        assert all(torch.isfinite(torch.tensor(checkpoint["history"].get("loss", [0.0]))))


@cuda
def test_gpu_features_and_knn_match_the_cpu():
    torch.manual_seed(0)
    encoder = build_encoder("small").eval()
    images = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8)
    cpu = extract_features(encoder, images)
    gpu = extract_features(encoder.cuda(), images).cpu()  # noqa: hard-wired on purpose in a CUDA-only test
    assert torch.allclose(cpu, gpu, atol=1e-3, rtol=1e-3)
    labels = torch.randint(0, 10, (300,))
    k, t = CLASS.knn_k, CLASS.knn_temperature
    agree = knn_predict(cpu[:200], labels[:200], cpu[200:], 10, k, t) == knn_predict(gpu[:200].cuda(), labels[:200].cuda(), gpu[200:].cuda(), 10, k, t).cpu()
    assert agree.float().mean() > 0.95
    scores = evaluate_features(gpu[:200].cuda(), labels[:200].cuda(), gpu[200:].cuda(), labels[200:].cuda(), 10, k, t)
    assert 0 <= scores["linear_probe"] <= 1
