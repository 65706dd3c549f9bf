"""Automatic checks for the lecture exercises, one module per lecture.

Each check runs the student's function on small inputs, compares it with the package's own
implementation, and raises ``ExerciseError`` with a message that says what is wrong and how to
look for it, instead of a bare assertion. When all is well it prints one line.

- ``common``: ``ExerciseError`` and the guard that turns the scaffold's ``NotImplementedError`` into advice.
- ``lecture00_introduction``: ``check_knn``.
- ``lecture01_colorization``: ``check_soft_encode``, ``check_annealed_mean``.
- ``lecture02_context_prediction``: ``check_neighbour_offsets``, ``check_project_out_green_magenta``.
- ``lecture03_jigsaw``: ``check_pairwise_hamming``.
- ``lecture04_rotation``: ``check_rotate_all``.
- ``lecture05_clustering_and_instances``: ``check_nmi``, ``check_update_memory``.
- ``lecture06_contrastive``: ``check_nt_xent_loop``, ``check_nt_xent``, ``check_sinkhorn``.
- ``lecture07_alignment_uniformity``: ``check_alignment_uniformity``, ``check_align_uniform_objective``.
- ``lecture08_transfer_and_gelato_bet``: ``check_balanced_subset``, ``check_gap_closed``.
- ``lecture09_beyond_still_images``: ``check_negative_sampling_loss``.

The lectures import every check from here: ``from sslteach.checks import check_knn``.
"""
from .common import ExerciseError
from .lecture00_introduction import check_knn
from .lecture01_colorization import check_annealed_mean, check_soft_encode
from .lecture02_context_prediction import check_neighbour_offsets, check_project_out_green_magenta
from .lecture03_jigsaw import check_pairwise_hamming
from .lecture04_rotation import check_rotate_all
from .lecture05_clustering_and_instances import check_nmi, check_update_memory
from .lecture06_contrastive import check_nt_xent, check_nt_xent_loop, check_sinkhorn
from .lecture07_alignment_uniformity import check_align_uniform_objective, check_alignment_uniformity
from .lecture08_transfer_and_gelato_bet import check_balanced_subset, check_gap_closed
from .lecture09_beyond_still_images import check_negative_sampling_loss

__all__ = [
    "ExerciseError",
    "check_knn",
    "check_soft_encode",
    "check_annealed_mean",
    "check_neighbour_offsets",
    "check_project_out_green_magenta",
    "check_pairwise_hamming",
    "check_rotate_all",
    "check_nmi",
    "check_update_memory",
    "check_nt_xent_loop",
    "check_nt_xent",
    "check_sinkhorn",
    "check_alignment_uniformity",
    "check_align_uniform_objective",
    "check_balanced_subset",
    "check_gap_closed",
    "check_negative_sampling_loss",
]
