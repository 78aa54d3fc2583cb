"""The stages strung together, with one runner for checkpoints, resume, timing and progress.

- ``runner.py``: ``Stage`` (what a stage depends on, computes, saves and loads) and ``StageRunner``.
- ``stages.py``: the neighbors, weights, assemble and eigen stages of a fit.
- ``fit.py``: ``fit_lle``, a fit as the sequence of those stages, and the store's metadata.
"""

from .fit import (
    LLEResult,
    check_connected,
    fit_lle,
    input_fingerprint,
    kept_embedding,
    store_attributes,
    write_result,
)
from .stages import cost_operator, local_fit, neighbor_graph

__all__ = [
    "LLEResult",
    "check_connected",
    "cost_operator",
    "fit_lle",
    "input_fingerprint",
    "kept_embedding",
    "local_fit",
    "neighbor_graph",
    "store_attributes",
    "write_result",
]
