"""Stage 2: barycentric reconstruction weights, one batched solve per row block.

For point x_i with neighbors x_j (j in N(i)), the weights minimise |x_i - sum_j w_j x_j|^2 subject
to sum_j w_j = 1 (Roweis & Saul 2000): with C = (x_j - x_i)(x_l - x_i)^T, solve (C + r I) w = 1
and normalise, r = reg * trace(C) (or reg when the trace is 0), as scikit-learn does.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from .. import config
from ..tasks.blocks import map_row_blocks


def barycenter_weights_reference(
    X: np.ndarray, Z: np.ndarray, indices: np.ndarray, reg: float = 1e-3
) -> np.ndarray:
    """One point at a time, straight from the paper: the reference for the batched version."""
    n, k = indices.shape
    weights = np.empty((n, k))
    for i in range(n):
        C = Z[indices[i]] - X[i]
        G = C @ C.T
        trace = np.trace(G)
        G += np.eye(k) * (reg * trace if trace > 0 else reg)
        w = np.linalg.solve(G, np.ones(k))
        weights[i] = w / w.sum()
    return weights


def barycenter_weights(
    points: np.ndarray, neighbor_points: np.ndarray, reg: float, exact_match: bool = False
) -> np.ndarray:
    """Batched barycentric weights.

    Parameters
    ----------
    points : (m, D) the points to reconstruct
    neighbor_points : (m, k, D) the coordinates of each point's k neighbors
    reg : regularisation relative to the trace of each local Gram matrix
    exact_match : when a point coincides with its first (nearest) neighbor, give that neighbor
        weight 1 (used to map new points, where a point equal to a training point must land on
        that point's image; in ``fit`` the first neighbor of a point is never the point itself)

    Returns
    -------
    (m, k) float64 weights, each row summing to one
    """
    C = neighbor_points.astype(np.float64, copy=False) - points.astype(np.float64)[:, None, :]
    w = gram_weights(C @ C.transpose(0, 2, 1), reg)
    if exact_match:
        same = np.all(neighbor_points[:, 0, :] == points, axis=1)
        w[same] = 0.0
        w[same, 0] = 1.0
    return w


def gram_weights(G: np.ndarray, reg: float) -> np.ndarray:
    """(m, k) barycentric weights from the (m, k, k) float64 local Gram matrices (regularised
    in place)."""
    m, k, _ = G.shape
    trace = np.trace(G, axis1=1, axis2=2)
    ridge = np.where(trace > 0, reg * trace, reg)
    G[:, np.arange(k), np.arange(k)] += ridge[:, None]
    ones = np.ones((m, k, 1))
    try:
        w = np.linalg.solve(G, ones)[..., 0]
    except np.linalg.LinAlgError:
        # Exactly singular systems happen only with reg = 0 and repeated points; the minimum-norm
        # solution keeps every weight finite.
        w = (np.linalg.pinv(G) @ ones)[..., 0]
    total = w.sum(1, keepdims=True)
    degenerate = ~np.isfinite(total) | (np.abs(total) < np.finfo(np.float64).tiny)
    w = np.where(degenerate, 1.0, w)
    total = np.where(degenerate, k, total)
    return w / total


def batch_limits() -> tuple[int, int]:
    """(``weights.batch-bytes``, ``weights.solve-batch-rows``), read where the graph is built:
    settings made in the client do not reach worker processes, so tasks get them as arguments."""
    return config.get_bytes("weights.batch-bytes"), int(config.get("weights.solve-batch-rows"))


def batch_rows(n_neighbors: int, n_features: int, limits: tuple[int, int]) -> int:
    """Rows per batch: a (rows, n_neighbors, n_features) float64 array within the byte limit,
    and at most the row limit (``limits`` from ``batch_limits``)."""
    max_bytes, max_rows = limits
    return int(max(1, min(max_rows, max_bytes // (8 * n_neighbors * n_features))))


def block_weights(
    points: np.ndarray,
    gathered: np.ndarray,
    local_indices: np.ndarray,
    *,
    row_offset: int,
    reg: float,
    exact_match: bool,
    limits: tuple[int, int],
) -> np.ndarray:
    """One row block's weights, solved a batch of rows at a time."""
    out = np.empty(local_indices.shape)
    step = batch_rows(local_indices.shape[1], points.shape[1], limits)
    for start in range(0, points.shape[0], step):
        rows = slice(start, start + step)
        neighbor_points = gathered[local_indices[rows]]
        out[rows] = barycenter_weights(points[rows], neighbor_points, reg, exact_match)
    return out


def gather_plan(
    indices: np.ndarray, row_chunks: tuple[int, ...]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each row block: the sorted unique rows its neighbors live in, and indices into them."""
    plan = []
    start = 0
    for n_rows in row_chunks:
        block = indices[start : start + n_rows]
        needed, inverse = np.unique(block, return_inverse=True)
        plan.append((needed, inverse.reshape(block.shape)))
        start += n_rows
    return plan


def neighbor_weights(
    X: da.Array,
    indices: np.ndarray,
    *,
    reg: float,
    points: da.Array | None = None,
    exact_match: bool = False,
) -> da.Array:
    """Barycentric weights of every row of X from its neighbors, a lazy (n, k) float64 array.

    ``indices[i]`` index rows of ``points`` (default: X itself). Each block reads only the rows
    its neighbors live in (a sorted gather: each source chunk is read once per block that needs
    it), never the whole of ``points``.
    """
    points = X if points is None else points
    plan = gather_plan(indices, X.chunks[0])
    per_block = [(points[needed], local) for needed, local in plan]
    return map_row_blocks(
        block_weights,
        [X],
        per_block=per_block,
        out_cols=indices.shape[1],
        dtype=np.float64,
        reg=reg,
        exact_match=exact_match,
        limits=batch_limits(),
    )


def _block_combine(w: np.ndarray, gathered: np.ndarray, local_indices: np.ndarray, *, row_offset):
    return np.einsum("ik,ikd->id", w, gathered[local_indices].astype(np.float64, copy=False))


def combine_rows(w: da.Array, indices: np.ndarray, values: da.Array) -> da.Array:
    """sum_j w[i, j] * values[indices[i, j]] for every row i, lazily, gathering only needed rows."""
    plan = gather_plan(indices, w.chunks[0])
    per_block = [(values[needed], local) for needed, local in plan]
    return map_row_blocks(
        _block_combine, [w], per_block=per_block, out_cols=values.shape[1], dtype=np.float64
    )
