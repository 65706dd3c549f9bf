"""sslteach: the machinery behind the self-supervised learning course.

The modules follow the course:

- ``device``, ``profiles``: where to run and with what budget (``class`` for a CPU, ``full`` for a GPU).
- ``data``: CIFAR-10 prepared once as uint8 tensors, and an offline tier of real photographs.
- ``augment``: batched augmentations on the device, per-image random parameters.
- ``encoders``: the small class-profile ConvNet and a CIFAR ResNet-18, both exposing their stages.
- ``checkpoint``: saving and loading checkpoints with their checksums, where a run's checkpoint
  lives, and which one a lecture uses.
- ``baselines``: the random-init and supervised baselines, trained like a method (lecture 00).
- ``colorization``, ``colorizer``: colorization, the maths and the network (lecture 01).
- ``context``: context prediction, its shortcuts (touching patches, chromatic aberration) and fixes (lecture 02).
- ``jigsaw``: jigsaw puzzles, the Hamming permutation set and the tiles (lecture 03; PIRL reuses the tiles).
- ``rotation``: rotation prediction (lecture 04).
- ``clustering``, ``npid``: DeepCluster and instance discrimination with a memory bank (lecture 05).
- ``contrastive``, ``simclr``, ``moco``, ``pirl``, ``swav``: InfoNCE / NT-Xent and the contrastive methods (lecture 06).
- ``hypersphere``, ``sphere_demo``, ``sphere_figures``: alignment and uniformity of normalised features, measured
  for any encoder and watched on the circle with small heads, and their figures and widgets (lecture 07).
- ``loop``: the training loop every method shares, and the random-init baseline's BatchNorm recomputation.
- ``methods``: the table of methods (each one's pretrain function lives in its own module), and
  ``load_or_pretrain``, the lectures' way to get a trained encoder.
- ``train``: ``python -m sslteach.train``, the command line that pretrains methods into checkpoints.
- ``evaluate``: kNN and linear probes on frozen features, and ``python -m sslteach.evaluate``.
- ``transfer``: the course table of every method under one protocol, and ``python -m sslteach.transfer`` (lecture 08).
- ``cli``: what the command lines share: expected failures as one line.
- ``plots``, ``widgets``, ``checks``: figures, interactive controls and exercise checks for the notebooks.
"""

__version__ = "0.1.0"
