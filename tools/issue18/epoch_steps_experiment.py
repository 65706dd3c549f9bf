"""Why do the NPID and PIRL loss curves step at epoch boundaries? (issue 18, item 5)

A small run of NPID (or PIRL) on real CIFAR-10 images, small enough for a minute or two on one
CPU thread, that records for every step what the training loss is made of:

    loss = mean_b [ -v_own . f_b / tau ]  +  mean_b [ logsumexp_j v_j . f_b / tau ]
           (the positive term)               (the partition term, over the whole bank)

and how many times the batch's own bank entries have been refreshed before this step (their
"generation"). It runs twice with the same seed and settings, differing only in how batches
are drawn:

* ``epochs``: a fresh shuffle of the training set each epoch, drawn without replacement (what
  ``sslteach.loop.fit`` does). Every image of epoch e has been refreshed exactly e - 1 times.
* ``iid``: every batch drawn independently, with replacement across steps. The generation of
  the positives then rises smoothly.

If the steps of the loss come from the bank entries changing generation all at once, they
appear in the positive term of ``epochs`` and in neither term of ``iid``. A comparison that no
change of the network or of the learning rate can explain: within one step, the loss of the
batch's images grouped by how often their entries have been refreshed (``by_refreshes``:
{refreshes: [mean loss of those images, how many]}; for PIRL the image term, and the tile
term in ``tile_by_refreshes``).

    OMP_NUM_THREADS=1 PYTHONPATH=. python tools/issue18/epoch_steps_experiment.py --method npid --images 4096 --epochs 3 --out /tmp/npid.json
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from sslteach.data import load_images
from sslteach.encoders import build_encoder
from sslteach.jigsaw import hamming_permutations, shuffled_tiles
from sslteach.loop import warmup_cosine
from sslteach.npid import NPIDSettings, initial_memory, non_parametric_logits
from sslteach.augment import simclr_augment
from sslteach.pirl import PIRLModel, PIRLSettings


def terms(logits: torch.Tensor, indices: torch.Tensor) -> tuple[float, float]:
    """(positive term, partition term) of cross_entropy(logits (B, N), indices (B,)), batch means."""
    positive = -logits.gather(1, indices.view(-1, 1)).mean().item()
    partition = torch.logsumexp(logits, dim=1).mean().item()
    return positive, partition


def draw_batches(sampler: str, num_images: int, batch: int, steps: int, generator) -> list[torch.Tensor]:
    """The dataset indices of each step's batch: (batch,) tensors, ``steps`` of them."""
    if sampler == "iid":
        return [torch.randperm(num_images, generator=generator)[:batch] for _ in range(steps)]
    order, batches = torch.empty(0, dtype=torch.long), []
    for _ in range(steps):  # as sslteach.loop.fit: a reshuffle when the current epoch runs out
        if len(order) < batch:
            order = torch.cat([order, torch.randperm(num_images, generator=generator)])
        batches.append(order[:batch])
        order = order[batch:]
    return batches


def run(method: str, sampler: str, images: torch.Tensor, batch: int, steps: int, seed: int, warmup: int, lr: float = 0.1) -> dict:
    torch.manual_seed(seed)
    encoder = build_encoder("small")
    if method == "npid":
        settings = NPIDSettings()
        model = nn.Sequential(encoder, nn.Linear(encoder.feature_dim, settings.feature_dim))
    else:
        settings = PIRLSettings()
        model = PIRLModel(encoder, settings.feature_dim)
        permutation_set = hamming_permutations(settings.permutations, seed)
    memory = initial_memory(model, encoder, images, settings, seed)
    refreshed = torch.zeros(len(images), dtype=torch.long)  # how often each entry has been written
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warmup, steps))
    generator = torch.Generator().manual_seed(seed)
    batches = draw_batches(sampler, len(images), batch, steps, torch.Generator().manual_seed(seed + 10))
    log = {k: [] for k in ("loss", "positive", "partition", "generation", "tile_positive", "tile_partition", "by_refreshes",
                                "tile_by_refreshes")}
    model.train()
    for step, index in enumerate(batches):
        x = images[index]
        view = simclr_augment(x, generator=generator)
        if method == "npid":
            f = F.normalize(model(view), dim=1)  # (B, D)
            logits = non_parametric_logits(f, memory.features, settings.temperature)  # (B, N)
            loss = F.cross_entropy(logits, index)
        else:
            tile_view = simclr_augment(x, generator=generator)
            chosen = torch.randint(len(permutation_set), (len(x),), generator=generator)
            g = model.embed_tiles(shuffled_tiles(tile_view, permutation_set[chosen], generator))
            f = model.embed_image(view)
            logits = non_parametric_logits(f, memory.features, settings.temperature)
            tile_logits = non_parametric_logits(g, memory.features, settings.temperature)
            loss = settings.weight * F.cross_entropy(tile_logits, index) + (1 - settings.weight) * F.cross_entropy(logits, index)
            tile_positive, tile_partition = terms(tile_logits.detach(), index)
            tile_image = F.cross_entropy(tile_logits.detach(), index, reduction="none")  # (B,)
            log["tile_by_refreshes"].append({int(c): tile_image[refreshed[index] == c].mean().item()
                                             for c in refreshed[index].unique()})
            log["tile_positive"].append(tile_positive)
            log["tile_partition"].append(tile_partition)
        per_image = F.cross_entropy(logits.detach(), index, reduction="none")  # (B,) the image term alone for PIRL
        counts = refreshed[index]
        log["by_refreshes"].append({int(c): [per_image[counts == c].mean().item(), int((counts == c).sum())]
                                    for c in counts.unique()})
        positive, partition = terms(logits.detach(), index)
        log["positive"].append(positive)
        log["partition"].append(partition)
        log["generation"].append(refreshed[index].float().mean().item())
        log["loss"].append(loss.item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        memory.update(index, f.detach(), settings.memory_momentum)
        refreshed[index] += 1
    return log


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", choices=("npid", "pirl"), default="npid")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=4)
    parser.add_argument("--warmup", type=int, default=10, help="warm-up steps of the learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    images = load_images("train").images[: args.images]
    steps = int(args.epochs * args.images / args.batch)
    result = {"args": vars(args), "steps_per_epoch": args.images / args.batch}
    for sampler in ("epochs", "iid"):
        start = time.perf_counter()
        result[sampler] = run(args.method, sampler, images, args.batch, steps, args.seed, args.warmup)
        print(f"{args.method} {sampler}: {steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
