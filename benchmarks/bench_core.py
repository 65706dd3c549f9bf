"""How fast does this machine run the course's hot paths?

    python benchmarks/bench_core.py [--device cpu|cuda] [--quick] [--json OUT] [--lectures]

One run measures, in order:

1. Peak matmul rate: the fp32 matrix-multiply rate the hardware reaches, the yardstick for
   everything else. On a CPU through two routes, ``torch.matmul`` (MKL) and the same product as a
   1x1 convolution in channels-last layout (oneDNN); on CUDA ``torch.matmul`` in fp32 (TF32 off)
   and in bf16.
2. Augmentation throughput of SimCLR's recipe: the batched, on-device version in
   ``sslteach.augment`` against the usual per-image torchvision pipeline on PIL images in a
   DataLoader with one worker per core.
3. Training-step throughput of the class profile (augment, forward, backward, SGD step) in
   images per second through the encoder, with the FLOPs of one step counted by
   ``torch.utils.flop_counter.FlopCounterMode`` to give achieved GFLOP/s and the fraction of the
   peak matmul rate. Variants show what each lever buys: channels-last layout, threads, and
   batched augmentation instead of a DataLoader.
4. With ``--lectures``: each lecture notebook executed in the class profile, with its kernel's
   peak resident memory and its wall time.

See benchmarks/README.md for what the numbers mean and the figures measured on the course's
reference machine.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import psutil
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision.transforms.functional import to_pil_image

from sslteach.augment import random_crop_flip, simclr_augment, to_float
from sslteach.data import data_dir, load_images
from sslteach.encoders import build_encoder
from sslteach.profiles import CLASS, FULL, Profile
from sslteach.rotation import rotate_batch, rotation_loss
from sslteach.train import Classifier

REPO = Path(__file__).resolve().parent.parent
LECTURE_MEMORY_LIMIT_MB = 4096  # every lecture must run in 4 GiB in the class profile
AUGMENT_BATCH = 512


# --------------------------------------------------------------------------------------------
# The machine, and how to time things on it
# --------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The processor's marketing name, from /proc/cpuinfo where there is one."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class OtherProgramsCPU:
    """Share of the machine's CPU time that *other* programs used between start and ``percent()``.

    The machine's busy time comes from /proc/stat (psutil); ours is this process plus its
    finished children (DataLoader workers, notebook kernels) from ``getrusage``. On a shared
    machine a benchmark that competed for the cores reports low numbers; this says so.
    """

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        t = psutil.cpu_times()
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        ours = sum(u.ru_utime + u.ru_stime for u in usage)
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        return time.perf_counter(), busy, ours

    def percent(self) -> float:
        (wall0, busy0, ours0), (wall1, busy1, ours1) = self.start, self._sample()
        others = max(0.0, (busy1 - busy0) - (ours1 - ours0))
        return 100 * others / ((wall1 - wall0) * os.cpu_count())


def other_programs_now(seconds: float = 0.5) -> float:
    """Percent of the CPU that other programs use over the next ``seconds``."""
    probe = OtherProgramsCPU()
    time.sleep(seconds)
    return probe.percent()


def machine_info(device: torch.device) -> dict:
    """Versions, device, threads, processor, and how busy other programs keep the CPU right now."""
    info = {
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "background_cpu_percent": other_programs_now(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(fn, device: torch.device, repeats: int) -> float:
    """Run ``fn`` once to warm up, then ``repeats`` times; the fastest run, in seconds.

    The minimum is the right summary for a kernel's speed: every disturbance (another process,
    a page fault, a frequency dip) only ever adds time.
    """
    fn()
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


# --------------------------------------------------------------------------------------------
# 1. Peak matmul rate
# --------------------------------------------------------------------------------------------


def matmul_gflops(n: int, device: torch.device, dtype=torch.float32, repeats: int = 3) -> float:
    """GFLOP/s of ``torch.matmul`` on two random n x n matrices (2 n^3 FLOPs per product)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = best_seconds(lambda: torch.matmul(a, b), device, repeats)
    return 2 * n**3 / seconds / 1e9


def conv1x1_gflops(pixels: int, channels: int, repeats: int = 3) -> float:
    """GFLOP/s of a (pixels x channels) @ (channels x channels) product done as a 1x1 convolution.

    A 1x1 convolution multiplies every pixel's channel vector by the same weight matrix, so with
    the image in channels-last layout (each pixel's channels contiguous) it *is* that matrix
    product, and PyTorch hands it to oneDNN instead of MKL. ``pixels`` must be a multiple of 64.
    """
    x = torch.randn(1, channels, pixels // 64, 64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 1, 1).contiguous(memory_format=torch.channels_last)
    seconds = best_seconds(lambda: F.conv2d(x, w), torch.device("cpu"), repeats)
    return 2 * pixels * channels**2 / seconds / 1e9


@contextlib.contextmanager
def tf32_matmul(allowed: bool):
    """Temporarily let CUDA matrix products round their inputs to TF32 (tensor cores) or not."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def measure_peak(device: torch.device, quick: bool) -> dict:
    """Each route's rate by name, and the best fp32 rate as ``peak``, in GFLOP/s.

    On CUDA also ``peak_tf32`` and ``peak_bf16``, the yardsticks for steps in those precisions.
    """
    rates = {}
    if device.type == "cuda":
        for n in (4096,) if quick else (4096, 8192):
            with tf32_matmul(False):  # true fp32, the number a CPU is held to
                rates[f"matmul fp32 {n}"] = matmul_gflops(n, device, repeats=10)
            with tf32_matmul(True):
                rates[f"matmul tf32 {n}"] = matmul_gflops(n, device, repeats=10)
            rates[f"matmul bf16 {n}"] = matmul_gflops(n, device, torch.bfloat16, repeats=10)
        best = {p: max(v for k, v in rates.items() if p in k) for p in ("fp32", "tf32", "bf16")}
        return {"rates": rates, "peak": best["fp32"], "peak_tf32": best["tf32"], "peak_bf16": best["bf16"]}
    for n in (2048,) if quick else (2048, 4096):
        rates[f"matmul (MKL) {n}"] = matmul_gflops(n, device)
    for pixels, channels in ((8192, 1024),) + (() if quick else ((2048, 2048), (4096, 4096))):
        rates[f"1x1 conv (oneDNN) {pixels}x{channels}"] = conv1x1_gflops(pixels, channels)
    return {"rates": rates, "peak": max(rates.values())}


# --------------------------------------------------------------------------------------------
# 2. Augmentation throughput
# --------------------------------------------------------------------------------------------


def index_batches(dataset_size: int, batch_size: int, n_batches: int, device, seed: int = 0):
    """Yield ``n_batches`` index tensors of ``batch_size``, walking through reshuffled epochs."""
    generator = torch.Generator(device).manual_seed(seed)
    order = torch.empty(0, dtype=torch.long, device=device)
    for _ in range(n_batches):
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(dataset_size, device=device, generator=generator)])
        yield order[:batch_size]
        order = order[batch_size:]


def batched_augment_rate(images: torch.Tensor, n_images: int, batch_size: int = AUGMENT_BATCH) -> float:
    """Images/s of ``simclr_augment`` on uint8 batches indexed out of ``images`` on its device."""
    device = images.device
    generator = torch.Generator(device).manual_seed(0)
    n_batches = max(1, n_images // batch_size)
    simclr_augment(images[:batch_size], generator=generator)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    for index in index_batches(len(images), batch_size, n_batches, device):
        simclr_augment(images[index], generator=generator)
    synchronize(device)
    return n_batches * batch_size / (time.perf_counter() - start)


def simclr_pil_transform() -> T.Compose:
    """SimCLR's CIFAR recipe as most code bases write it: torchvision transforms on one PIL image."""
    return T.Compose(
        [
            T.RandomResizedCrop(32, scale=(0.08, 1.0)),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.ToTensor(),
        ]
    )


def crop_flip_pil_transform() -> T.Compose:
    """RotNet's CIFAR recipe (random crop with 4 pixels of padding, flip) on one PIL image."""
    return T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor()])


class PILImages(Dataset):
    """(transformed image, label) pairs from a list of PIL images, as a torchvision dataset gives."""

    def __init__(self, images: list, labels: list, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def pil_dataset(images: torch.Tensor, labels: torch.Tensor, count: int, transform) -> PILImages:
    """``count`` images (cycling if there are fewer) as PIL images; the conversion is not timed."""
    index = torch.arange(count) % len(images)
    pil_images = [to_pil_image(image) for image in images[index.to(images.device)].cpu()]
    return PILImages(pil_images, labels.cpu()[index].tolist(), transform)


def per_image_loader(dataset: PILImages, batch_size: int) -> DataLoader:
    """The usual input pipeline: one worker process per core, each transforming single images."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=os.cpu_count(),
        persistent_workers=True,
        drop_last=True,
    )


def warm_up(loader: DataLoader) -> None:
    """Start the loader's workers and take one batch; the next ``iter(loader)`` starts afresh.

    With persistent workers, starting a new epoch first drains the batches the workers had
    already queued, so the timed epoch begins with no head start.
    """
    next(iter(loader))


def loader_rate(loader: DataLoader) -> float:
    """Images/s over one full epoch of a warmed-up loader."""
    start = time.perf_counter()
    seen = sum(len(labels) for images, labels in loader)
    return seen / (time.perf_counter() - start)


def measure_augmentation(images: torch.Tensor, labels: torch.Tensor, n_images: int) -> dict:
    """SimCLR augmentation, batched on the device vs per-image PIL in a DataLoader, in images/s."""
    batched = batched_augment_rate(images, n_images)
    loader = per_image_loader(pil_dataset(images, labels, n_images, simclr_pil_transform()), AUGMENT_BATCH)
    warm_up(loader)
    per_image = loader_rate(loader)
    del loader  # stops its workers
    return {"batched": batched, "per_image": per_image, "ratio": batched / per_image, "images": n_images}


# --------------------------------------------------------------------------------------------
# 3. Training steps
# --------------------------------------------------------------------------------------------


def make_model(profile: Profile, num_classes: int, device, memory_format) -> Classifier:
    """The profile's encoder with a linear head, in ``memory_format``, as ``pretrain`` builds it."""
    encoder = build_encoder(profile.encoder)
    return Classifier(encoder, num_classes).to(device, memory_format=memory_format)


def sgd_as_in_fit(model, profile: Profile) -> torch.optim.Optimizer:
    """The optimiser ``fit`` uses: SGD with Nesterov momentum and the profile's weight decay."""
    return torch.optim.SGD(
        model.parameters(), lr=profile.lr, momentum=0.9, nesterov=True, weight_decay=profile.weight_decay
    )


# Losses with fit's signature (model, uint8 images, labels, generator) -> loss or (loss, metrics).


def rotation_loss_channels_last(model, images, labels, generator):
    """Exactly what the lectures run: ``sslteach.rotation.rotation_loss`` (labels unused)."""
    return rotation_loss(model, images, generator)


def rotation_loss_nchw(model, images, labels, generator):
    """``rotation_loss`` with the rotated batch left in plain NCHW (contiguous) layout."""
    rotated, rotations = rotate_batch(to_float(random_crop_flip(images, generator=generator)))
    return F.cross_entropy(model(rotated.contiguous()), rotations)


def simclr_supervised_loss(model, images, labels, generator):
    """Cross-entropy on true labels after SimCLR's augmentation: the heavier augmentation's cost."""
    x = simclr_augment(images, generator=generator).contiguous(memory_format=torch.channels_last)
    return F.cross_entropy(model(x), labels)


# Losses (model, float images, labels) -> loss for batches a DataLoader has already augmented.


def rotation_loss_preaugmented(model, floats, labels):
    """The rotation loss on images already cropped, flipped and made float (labels unused)."""
    rotated, rotations = rotate_batch(floats)
    return F.cross_entropy(model(rotated.contiguous(memory_format=torch.channels_last)), rotations)


def supervised_loss_preaugmented(model, floats, labels):
    """Cross-entropy on true labels of images already augmented and made float."""
    return F.cross_entropy(model(floats.contiguous(memory_format=torch.channels_last)), labels)


def train_step(model, optimizer, compute_loss, autocast) -> None:
    """One step in ``fit``'s order: loss (augmentation included), zero grads, backward, update."""
    with autocast:
        loss = compute_loss()
    if isinstance(loss, tuple):  # sslteach's losses also return a metrics dict
        loss = loss[0]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def device_step(profile, num_classes, memory_format, loss_fn, images, labels, images_per_step, autocast):
    """A fresh model and a zero-argument training step on it.

    Each step draws its batch from ``images`` on the device by index, as ``fit`` does.
    """
    model = make_model(profile, num_classes, images.device, memory_format)
    optimizer = sgd_as_in_fit(model, profile)
    batches = index_batches(len(images), images_per_step, 10**9, images.device)
    generator = torch.Generator(images.device).manual_seed(0)

    def step():
        index = next(batches)
        train_step(model, optimizer, lambda: loss_fn(model, images[index], labels[index], generator), autocast)

    return step


def loader_step(dataset: PILImages, num_classes: int, loss_fn, images_per_step: int, device):
    """A fresh class-profile model and a training step fed by a per-image DataLoader.

    ``loss_fn(model, floats, labels)`` gets batches the workers have already augmented.
    """
    model = make_model(CLASS, num_classes, device, torch.channels_last)
    optimizer = sgd_as_in_fit(model, CLASS)
    loader = per_image_loader(dataset, images_per_step)
    warm_up(loader)

    def endless():
        while True:
            yield from loader

    stream = endless()

    def step():
        floats, labels = (t.to(device, non_blocking=True) for t in next(stream))
        train_step(model, optimizer, lambda: loss_fn(model, floats, labels), contextlib.nullcontext())

    return step


@dataclasses.dataclass
class Variant:
    """One training-step configuration to time."""

    name: str
    build: Callable[[], Callable[[], None]]
    """Makes a fresh model and returns its zero-argument training step."""
    views: int
    """Images through the encoder per step (4 rotated views of each image for rotation)."""
    precision: str = "fp32"
    """Which peak rate to compare with: fp32, tf32 or bf16."""
    threads: int | None = None
    """Torch CPU threads for this variant; None keeps the default."""


def step_variants(images, labels, device, quick: bool) -> list[Variant]:
    """The training steps to time; the first is the lectures' own, the others each change one thing."""
    n = CLASS.batch_size // 4  # rotation: 4 views of each image go through the encoder
    n_pil = 8192 if quick else 20480  # images converted to PIL for the DataLoader variants
    fp32 = fp32_precision(device)
    off = contextlib.nullcontext()

    def on_device(loss_fn, memory_format=torch.channels_last, profile=CLASS, classes=4, per_step=n, autocast=off):
        def build():
            return device_step(profile, classes, memory_format, loss_fn, images, labels, per_step, autocast)

        return build

    def per_image(transform, loss_fn, classes, per_step):
        def build():
            return loader_step(pil_dataset(images, labels, n_pil, transform), classes, loss_fn, per_step, device)

        return build

    lectures = on_device(rotation_loss_channels_last)
    variants = [Variant("rotation, channels_last (as the lectures run it)", lectures, 4 * n, fp32)]
    if device.type == "cpu" and torch.get_num_threads() > 1:
        variants.append(Variant("rotation, channels_last, 1 thread", lectures, 4 * n, fp32, threads=1))
    variants += [
        Variant("rotation, NCHW (contiguous)", on_device(rotation_loss_nchw, torch.contiguous_format), 4 * n, fp32),
        Variant(
            "rotation, per-image DataLoader crop+flip",
            per_image(crop_flip_pil_transform(), rotation_loss_preaugmented, 4, n),
            4 * n,
            fp32,
        ),
        Variant(
            "SimCLR augment + supervised, batched on device",
            on_device(simclr_supervised_loss, classes=10, per_step=CLASS.batch_size),
            CLASS.batch_size,
            fp32,
        ),
        Variant(
            "SimCLR augment + supervised, per-image DataLoader",
            per_image(simclr_pil_transform(), supervised_loss_preaugmented, 10, CLASS.batch_size),
            CLASS.batch_size,
            fp32,
        ),
    ]
    if device.type == "cuda":
        n_full = FULL.batch_size // 4
        bf16 = torch.autocast("cuda", dtype=torch.bfloat16)
        for label, autocast, precision in (("fp32", off, fp32), ("bf16 autocast", bf16, "bf16")):
            build = on_device(rotation_loss_channels_last, profile=FULL, per_step=n_full, autocast=autocast)
            variants.append(Variant(f"full profile resnet18 rotation, {label}", build, 4 * n_full, precision))
    return variants


def fp32_precision(device) -> str:
    """What an fp32 training step really computes in: cuDNN convolutions default to TF32 on CUDA."""
    return "tf32" if device.type == "cuda" and torch.backends.cudnn.allow_tf32 else "fp32"


@contextlib.contextmanager
def num_threads(n: int | None):
    """Temporarily run torch's CPU kernels on ``n`` threads (None: leave as is)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def count_step_flops(step) -> int:
    """Forward + backward FLOPs of one call of ``step`` (convolutions and matrix products)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def time_steps(step, n_steps: int, device, warmup: int = 2) -> float:
    """Seconds per call of ``step``, averaged over ``n_steps`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(n_steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / n_steps


def measure_steps(images, labels, device, peak: dict, quick: bool) -> list[dict]:
    """Images/s, GFLOP per step, achieved GFLOP/s and fraction of peak for every variant."""
    n_steps = 8 if quick else 40
    peak_of = {"fp32": peak["peak"], "tf32": peak.get("peak_tf32"), "bf16": peak.get("peak_bf16")}
    results = []
    for variant in step_variants(images, labels, device, quick):
        with num_threads(variant.threads):
            step = variant.build()
            flops = count_step_flops(step)
            seconds = time_steps(step, n_steps, device)
        del step  # a DataLoader's workers end with it
        gflops = flops / seconds / 1e9
        results.append(
            {
                "name": variant.name,
                "images_per_s": variant.views / seconds,
                "step_ms": 1000 * seconds,
                "gflop_per_step": flops / 1e9,
                "gflops": gflops,
                "fraction_of_peak": gflops / peak_of[variant.precision],
                "precision": variant.precision,
                "threads": variant.threads or torch.get_num_threads(),
            }
        )
    return results


# --------------------------------------------------------------------------------------------
# NT-Xent: the vectorised loss against the slow loop and an independent implementation
# --------------------------------------------------------------------------------------------

# Batch sizes B (2B embeddings of dimension 128): the vectorised loss and the anchor loop
# (info_nce_rows, 2B Python steps) are timed at every one of them.
NTXENT_SIZES = (256, 512, 1024, 2048, 4096)
# The pair loop (info_nce_loop) makes 4B^2 Python-level dot products and an autograd graph as
# large: B = 256 would take minutes and B = 4096 days, so it is timed at small B and its time at
# the sizes above is extrapolated from those (proportional to B^2, fitted), and marked as such.
NTXENT_LOOP_SIZES = (16, 32, 64)
# pytorch-metric-learning's NTXentLoss masks (2B) x (2B (2B - 2)) pairs: memory and time grow as
# B^3 (about 2 GB and tens of seconds at B = 256; B = 4096 would need terabytes), so it is timed
# up to B = 256 (128 with --quick).
NTXENT_PML_MAX = 256


def ntxent_step_seconds(loss_fn, B: int, device, repeats: int, dim: int = 128) -> float:
    """Fastest forward + backward of ``loss_fn(z1, z2)`` on random (B, dim) embeddings."""
    g = torch.Generator(device).manual_seed(0)
    z1 = torch.randn(B, dim, device=device, generator=g, requires_grad=True)
    z2 = torch.randn(B, dim, device=device, generator=g, requires_grad=True)

    def step():
        z1.grad = z2.grad = None
        loss_fn(z1, z2).backward()

    return best_seconds(step, device, repeats)


def measure_ntxent(device, quick: bool) -> list[dict]:
    """ms per forward + backward of ``sslteach.contrastive.nt_xent`` against the anchor loop
    (``info_nce_rows``, every B), the pair loop (``info_nce_loop``: timed at small B, extrapolated
    as c B^2 beyond) and pytorch-metric-learning's NTXentLoss (B up to NTXENT_PML_MAX), with the
    ratios other / vectorised."""
    from sslteach.contrastive import info_nce_loop, info_nce_rows, nt_xent

    try:
        from pytorch_metric_learning.losses import NTXentLoss, SelfSupervisedLoss

        pml = SelfSupervisedLoss(NTXentLoss(temperature=0.5), symmetric=True)
    except ImportError:  # a test-only dependency: pip install -e '.[test]'
        pml = None
    temperature = 0.5
    ours = lambda a, b: nt_xent(a, b, temperature)  # noqa: E731
    loop_sizes = NTXENT_LOOP_SIZES[:2] if quick else NTXENT_LOOP_SIZES
    sizes = (256, 1024, 4096) if quick else NTXENT_SIZES
    pml_max = NTXENT_PML_MAX // 2 if quick else NTXENT_PML_MAX
    rows = []
    for B in sorted(set(loop_sizes + sizes + (pml_max,))):
        row = {"batch": B, "vectorised_ms": 1000 * ntxent_step_seconds(ours, B, device, 2 if B >= 2048 else 5)}
        if B in sizes:
            row["rows_ms"] = 1000 * ntxent_step_seconds(lambda a, b: info_nce_rows(a, b, temperature), B, device, 1)
            row["rows_ratio"] = row["rows_ms"] / row["vectorised_ms"]
        if B in loop_sizes:
            row["loop_ms"] = 1000 * ntxent_step_seconds(lambda a, b: info_nce_loop(a, b, temperature), B, device, 1)
        if pml is not None and B <= pml_max:
            row["pml_ms"] = 1000 * ntxent_step_seconds(pml, B, device, 1)
            row["pml_ratio"] = row["pml_ms"] / row["vectorised_ms"]
        rows.append(row)
    # The pair loop's time is 4B^2 steps of about the same cost: fit c in c B^2 by least squares.
    timed = [(r["batch"], r["loop_ms"]) for r in rows if "loop_ms" in r]
    c = sum(b * b * ms for b, ms in timed) / sum(b ** 4 for b, _ in timed)
    for r in rows:
        if "loop_ms" not in r:
            r["loop_ms"], r["loop_extrapolated"] = c * r["batch"] ** 2, True
        r["loop_ratio"] = r["loop_ms"] / r["vectorised_ms"]
    return rows


# --------------------------------------------------------------------------------------------
# 4. Lecture notebooks: peak memory and wall time
# --------------------------------------------------------------------------------------------


# Runs in a fresh, small interpreter (python -c), one per notebook. A child process inherits its
# parent's resident-size high-water mark up to the moment it execs the kernel, so the process that
# starts the kernel must be small: this benchmark, with torch and CIFAR-10 loaded, is not.
# ru_maxrss of RUSAGE_CHILDREN is then the largest peak among finished children and their
# finished descendants: the kernel's (DataLoader workers are processes of their own, not summed).
# nbclient shuts the kernel down and reaps it before execute() returns.
NOTEBOOK_RUNNER = r"""
import json, re, resource, sys, time
from pathlib import Path
import nbclient, nbformat

path = Path(sys.argv[1])
notebook = nbformat.read(path, as_version=4)
client = nbclient.NotebookClient(notebook, timeout=None, resources={"metadata": {"path": str(path.parent)}})
start, error = time.perf_counter(), None
try:
    client.execute()
except Exception as exc:  # report the failure; what ran is still measured
    last_line = (re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines() or [""])[-1]  # no colours
    error = type(exc).__name__ + ": " + last_line
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "error": error}))
"""


def fresh_data_folder(folder: Path) -> Path:
    """A data folder with no checkpoints in it, and CIFAR-10 (if prepared) linked in read-only.

    Lectures train what they need when no checkpoint exists (``load_or_pretrain``), so this makes
    each measured run a cold one, the most memory and time a student's first run can take, and
    keeps this benchmark from writing into the repository's data folder.
    """
    cifar10 = data_dir() / "cifar10"
    if cifar10.is_dir():
        (folder / "cifar10").symlink_to(cifar10.resolve(), target_is_directory=True)
    return folder


def measure_lectures(device: torch.device) -> list[dict]:
    """Each lecture in its own child process, in the class profile on ``device``, in order.

    All lectures share one fresh data folder, so a later lecture reuses checkpoints an earlier
    one trained, as when a student works through them in order.
    """
    notebooks = sorted((REPO / "lectures").glob("*.ipynb"))
    results = []
    with tempfile.TemporaryDirectory(prefix="sslteach-bench-") as tmp:
        env = dict(
            os.environ,
            SSLTEACH_PROFILE="class",
            SSLTEACH_DEVICE=str(device),
            SSLTEACH_DATA=str(fresh_data_folder(Path(tmp))),
        )
        for path in notebooks:
            print(f"  executing {path.name} ...", flush=True)
            results.append(run_lecture(path, env))
    return results


def run_lecture(path: Path, env: dict) -> dict:
    """Wall time, the kernel's peak RSS and any error of one notebook run in a fresh interpreter."""
    child = subprocess.run([sys.executable, "-c", NOTEBOOK_RUNNER, str(path)], env=env, capture_output=True, text=True)
    if child.returncode != 0:
        result = {"seconds": float("nan"), "peak_rss_mb": float("nan"), "error": child.stderr.strip()[-300:]}
    else:
        result = json.loads(child.stdout.strip().splitlines()[-1])
    result["notebook"] = path.name
    result["under_limit"] = result["peak_rss_mb"] < LECTURE_MEMORY_LIMIT_MB
    return result


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def print_header(info: dict, dataset: str) -> None:
    print("sslteach core benchmark")
    print(f"  torch {info['torch']}, python {info['python']}")
    print(f"  device {info['device']}" + (f" ({info['gpu']})" if "gpu" in info else ""))
    print(f"  CPU {info['cpu_model']}, {info['cpu_count']} cores, torch threads {info['threads']}")
    print(f"  images: {dataset}")
    if info["background_cpu_percent"] > 20:
        busy = info["background_cpu_percent"]
        print(f"  WARNING: other programs kept {busy:.0f}% of the CPU busy as we started; numbers will be low")


def print_peak(peak: dict) -> None:
    print("\n1. Peak matmul rate (GFLOP/s)")
    for name, rate in peak["rates"].items():
        print(f"  {name:<34} {rate:>10.1f}")
    print(f"  {'peak (fp32, best of the above)':<34} {peak['peak']:>10.1f}")
    for precision in ("tf32", "bf16"):
        if f"peak_{precision}" in peak:
            print(f"  {f'peak ({precision})':<34} {peak[f'peak_{precision}']:>10.1f}")


def print_augmentation(aug: dict) -> None:
    print(f"\n2. SimCLR augmentation throughput (images/s, {aug['images']} images, batches of {AUGMENT_BATCH})")
    print(f"  {'batched on device (simclr_augment)':<44} {aug['batched']:>10.0f}")
    print(f"  {f'per-image PIL, DataLoader, {os.cpu_count()} workers':<44} {aug['per_image']:>10.0f}")
    verdict = "meets" if aug["ratio"] >= 5 else "below"
    print(f"  {'ratio':<44} {aug['ratio']:>9.1f}x  ({verdict} the 5x target)")


def print_steps(steps: list[dict]) -> None:
    print("\n3. Training step: augment + forward + backward + SGD (class profile unless named)")
    print(f"  {'variant':<52} {'img/s':>8} {'ms/step':>8} {'GFLOP':>7} {'GFLOP/s':>8} {'of peak':>8} (peak)")
    for s in steps:
        print(
            f"  {s['name']:<52} {s['images_per_s']:>8.0f} {s['step_ms']:>8.1f} {s['gflop_per_step']:>7.1f}"
            f" {s['gflops']:>8.1f} {100 * s['fraction_of_peak']:>7.0f}% {s['precision']}"
        )
    print("  img/s counts images through the encoder (4 rotated views per image for rotation).")


def print_ntxent(rows: list[dict]) -> None:
    print("\nNT-Xent forward + backward (2B embeddings of 128 dims, ms; ratio = other / vectorised)")
    print(f"  {'B':>6} {'vectorised':>11} {'anchor loop':>12} {'ratio':>7} {'pair loop':>13} {'ratio':>9} {'pml':>9} {'ratio':>7}")
    for r in rows:
        anchors = f"{r['rows_ms']:>12.1f} {r['rows_ratio']:>6.0f}x" if "rows_ms" in r else f"{'-':>12} {'-':>7}"
        mark = "~" if r.get("loop_extrapolated") else " "
        pairs = f"{mark}{r['loop_ms']:>12.0f} {r['loop_ratio']:>8.0f}x"
        pml = f"{r['pml_ms']:>9.1f} {r['pml_ratio']:>6.1f}x" if "pml_ms" in r else f"{'-':>9} {'-':>7}"
        print(f"  {r['batch']:>6} {r['vectorised_ms']:>11.2f} {anchors} {pairs} {pml}")
    timed = [r["batch"] for r in rows if "loop_ms" in r and not r.get("loop_extrapolated")]
    pml_max = max((r["batch"] for r in rows if "pml_ms" in r), default=0)
    print(f"  anchor loop: 2B Python steps, timed at every B. pair loop: 4B^2 Python steps, timed at B = "
          f"{', '.join(map(str, timed))}; ~ marks its time extrapolated as c B^2 from those.")
    print(f"  pytorch-metric-learning timed up to B = {pml_max} (its memory grows as B^3)"
          f"{'' if pml_max else ': not installed'}")


def print_lectures(lectures: list[dict]) -> None:
    print(f"\n4. Lecture notebooks, class profile (peak kernel RSS; limit {LECTURE_MEMORY_LIMIT_MB} MiB)")
    if not lectures:
        print("  no notebooks in lectures/ yet")
    for r in lectures:
        verdict = "under 4 GiB" if r["under_limit"] else "OVER 4 GiB"
        print(f"  {r['notebook']:<34} {r['peak_rss_mb']:>8.0f} MiB  {verdict:<12} {r['seconds']:>7.1f} s")
        if r["error"]:
            print(f"    failed: {r['error']}")


# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and steps, about 30 s on a CPU")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    parser.add_argument("--lectures", action="store_true", help="also execute lectures/*.ipynb and measure memory")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    others = OtherProgramsCPU()
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count())
    train = load_images("train")  # CIFAR-10 if prepared, else the offline photo patches
    images, labels = train.images.to(device), train.labels.to(device)
    info = machine_info(device)
    print_header(info, f"{train.provenance.get('dataset', '?')}, {len(images)} training images")

    peak = measure_peak(device, args.quick)
    print_peak(peak)
    augmentation = measure_augmentation(images, labels, 5120 if args.quick else 40960)
    print_augmentation(augmentation)
    steps = measure_steps(images, labels, device, peak, args.quick)
    print_steps(steps)
    ntxent = measure_ntxent(device, args.quick)
    print_ntxent(ntxent)
    lectures = None
    if args.lectures:
        lectures = measure_lectures(device)
        print_lectures(lectures)

    info["other_programs_cpu_percent"] = others.percent()
    print(f"\nOther programs used {info['other_programs_cpu_percent']:.0f}% of the CPU during this run"
          + (" (numbers above are depressed)" if info["other_programs_cpu_percent"] > 10 else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = dict(machine=info, peak=peak, augmentation=augmentation, steps=steps, ntxent=ntxent, lectures=lectures)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
