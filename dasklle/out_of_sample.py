"""New points in a fitted embedding, and embedding points back in input space.

Both directions write a point as the barycentric combination of its nearest fitted points (in
the space it comes from) and apply the same weights to those points in the other space.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from .local import weights
from .tasks.blocks import map_row_blocks
from .tasks.progress import compute


def barycentric_map(queries, indices: np.ndarray, reference, values, reg: float) -> da.Array:
    """Barycentric weights of queries among reference[indices], applied to values[indices]."""
    w = weights.neighbor_weights(queries, indices, reg=reg, points=reference, exact_match=True)
    return weights.combine_rows(w, indices, values)


def tree_neighbors(queries: da.Array, tree, n_neighbors: int) -> np.ndarray:
    """The ``n_neighbors`` nearest points of a fitted scikit-learn tree, for every query row."""
    (indices,) = compute(
        map_row_blocks(
            _query_tree,
            [queries],
            per_block=[(tree,)] * queries.numblocks[0],
            out_cols=n_neighbors,
            dtype=np.int64,
            n_neighbors=n_neighbors,
        )
    )
    return indices


def _query_tree(block: np.ndarray, tree, *, row_offset: int, n_neighbors: int) -> np.ndarray:
    """One row block's neighbors in the tree."""
    return tree.query(block, k=n_neighbors, return_distance=False).astype(np.int64)
