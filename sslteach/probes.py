"""The lectures' probes of a frozen encoder, measured once per set of weights and images.

The pretext-task lectures probe every stage of an encoder (``evaluate.evaluate_blocks``: kNN
and a linear probe on each stage's 2x2-pooled map) to show where a task's features are best,
and lecture 06 probes the pooled final features of each method (``evaluate.evaluate_encoder``).
Both use ``profile.probe_train_images`` labelled images: an analysis beside the headline table,
not the headline itself (``sslteach.headline``).

The weights they probe are the shipped checkpoints, the same on every run, and a probe takes
half a minute or more on a laptop CPU. So each result is stored like a course-table row
(``sslteach.transfer``): in ``probes.json`` beside the checkpoints (yours in data/, then the
shipped one), under the fingerprint of the weights and of the exact images and labels probed,
measured with the same profile settings and protocol. Weights or images that are not stored (a
network you trained yourself, other data) are probed now, and the result is added to your
table. Each result says where it came from: ``result["source"]`` (for stages, on every stage).

    stages = probe_stages(encoder, train_set, test_set, profile)   # [{"knn", "linear_probe", ...}, ...]
    print(source_note(stages))            # "stored in checkpoints/class/probes.json" or "measured now"
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from .data import data_fingerprint
from .evaluate import evaluate_blocks, evaluate_encoder, probe_data
from .transfer import measured_with, store_row, stored_tables, table_paths, weights_fingerprint

PROBES_FILE = "probes.json"
PROTOCOL = {
    "probes": "evaluate.evaluate_blocks (every stage, 2x2-pooled) and evaluate.evaluate_encoder (pooled final features)",
    "labelled_images": "profile.probe_train_images of the training split",
    "version": 1,
}
"""What a stored probe measured; a table measured under another protocol is not read."""

MEASURED_NOW = "measured now"


def images_fingerprint(*tensors: torch.Tensor) -> str:
    """SHA-256 of tensors' shapes, dtypes and bytes: the exact images and labels a probe used
    (the data fingerprint names the dataset; this tells colour images from their grey copies)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def stored_or_measured(readout: str, encoder, train_set, test_set, profile, measure, save: bool = True, *,
                       images: str | None = None, file: str = PROBES_FILE, protocol: dict = PROTOCOL):
    """The stored result of ``readout`` for these weights and images, or ``measure()`` now
    (stored in the user's table when ``save``). Returns (result, source).

    A table is kept for one profile and protocol (``transfer.measured_with``) but, unlike the
    course table, not for one set of data: lectures probe subsets and grey copies of the data,
    and the fingerprint of the exact images and labels probed already tells them apart. Each
    row records its data (``sslteach.data.data_fingerprint``) for the reader.

    ``images`` is that fingerprint (default: of the profile's probe images,
    ``evaluate.probe_data``); another measurement keeps its own ``file`` and ``protocol``
    (lecture 07's, ``sphere_demo.measure_encoder``)."""
    fingerprint = weights_fingerprint(encoder.state_dict())
    images = images or images_fingerprint(*probe_data(train_set, test_set, profile))
    name = f"{readout}:{fingerprint[:16]}:{images[:16]}"
    settings = measured_with(profile, protocol)
    for path, table, _ in stored_tables(profile.name, file, protocol):  # of this protocol
        row = table["rows"].get(name)
        if (row is not None and (row["fingerprint"], row["images"]) == (fingerprint, images)
                and all(table.get(k) == settings[k] for k in ("profile", "profile_settings"))):
            return row["result"], str(path)
    start = time.perf_counter()
    result = measure()
    if save:
        row = {"readout": readout, "fingerprint": fingerprint, "images": images, "result": result,
               "data": data_fingerprint(train_set, test_set), "seconds": time.perf_counter() - start}
        store_row(table_paths(profile.name, file)[0], settings, name, row)
    return result, MEASURED_NOW


def probe_stages(encoder, train_set, test_set, profile, stages: int | None = None, save: bool = True) -> list[dict]:
    """``evaluate.evaluate_blocks`` of every stage, stored or measured now, then the first
    ``stages`` of them (default all; one stored result serves every count): one dict per stage,
    {"knn", "linear_probe", "source"}."""
    result, source = stored_or_measured("stages", encoder, train_set, test_set, profile,
                                        lambda: evaluate_blocks(encoder, train_set, test_set, profile), save)
    return [{**stage, "source": source} for stage in result[:stages]]


def probe_pooled(encoder, train_set, test_set, profile, save: bool = True) -> dict:
    """``evaluate.evaluate_encoder`` on the pooled final features, stored or measured now:
    {"knn", "linear_probe", "train_images", "test_images", "source"}."""
    result, source = stored_or_measured("pooled", encoder, train_set, test_set, profile,
                                        lambda: evaluate_encoder(encoder, train_set, test_set, profile), save)
    return {**result, "source": source}


def source_note(*results) -> str:
    """One line for a lecture: where these probe results (each a dict or a list of per-stage
    dicts) came from: "stored in checkpoints/class/probes.json" (the shipped table), "stored in
    <your table>", "measured now", or several of them joined by "; "."""
    from .checkpoint import shipped_checkpoints

    sources = []
    for result in results:
        for stage in result if isinstance(result, list) else [result]:
            if stage["source"] not in sources:
                sources.append(stage["source"])
    notes = []
    for source in sources:
        path = Path(source)
        if source == MEASURED_NOW:
            notes.append(source)
        elif path.parent.parent == shipped_checkpoints():
            notes.append(f"stored in checkpoints/{path.parent.name}/{path.name}")
        else:
            notes.append(f"stored in {path}")
    return "; ".join(notes)
