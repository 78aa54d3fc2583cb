"""Exact search by blockwise brute force, and the rerank of candidates by true distance.

Every exact search ranks equal distances by row index, the lower first, whatever the chunking:
``smallest`` orders each row's candidates by the pair (distance, index), so the blocks the
candidates were split into do not change the result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from .. import config
from ..tasks.blocks import map_row_blocks, row_offsets, tree_reduce
from ..tasks.memory import task_bytes


def drop_self(candidates: np.ndarray, rows: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Remove each row's own index from its k+1 candidates (or the farthest if it is absent).

    Removal goes by index, not by position, so duplicated points stay correct.
    """
    is_self = candidates == rows[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1)[:, :n_neighbors]


def squared_distances(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(queries, points) squared Euclidean distances in float64, by one matrix product."""
    q = queries.astype(np.float64, copy=False)
    p = points.astype(np.float64, copy=False)
    d2 = (q * q).sum(1)[:, None] - 2.0 * (q @ p.T) + (p * p).sum(1)[None, :]
    return np.maximum(d2, 0.0)


def smallest(dist: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest (distance, index) pairs of each row, ties broken by the smaller index.

    Ordering by the pair makes the result independent of how the candidates were split into
    blocks, so every chunking and every exact algorithm finds the same neighbors.
    """
    k = min(k, dist.shape[1])
    if dist.shape[1] > k:
        part = np.argpartition(dist, (k - 1, k), axis=1)
        bounds = np.take_along_axis(dist, part[:, k - 1 : k + 1], 1)
        part = part[:, :k]
        # argpartition picks arbitrary entries among those tied at the k-th value
        tied = np.flatnonzero(bounds[:, 0] == bounds[:, 1])
        if len(tied):
            part[tied] = _lowest_index_ties(dist[tied], index[tied], bounds[tied, 0], k)
        dist = np.take_along_axis(dist, part, 1)
        index = np.take_along_axis(index, part, 1)
    order = np.lexsort((index, dist), axis=1)
    return np.take_along_axis(dist, order, 1), np.take_along_axis(index, order, 1)


def _lowest_index_ties(dist: np.ndarray, index: np.ndarray, kth: np.ndarray, k: int) -> np.ndarray:
    """Positions of each row's k smallest (distance, index) pairs, given its k-th distance."""
    kth = kth[:, None]
    # every entry below the k-th distance ranks first, then the ties by index, then the rest
    key = np.where(dist == kth, index, np.iinfo(index.dtype).max)
    key = np.where(dist < kth, -1, key)
    return np.argpartition(key, k - 1, axis=1)[:, :k]


def _block_candidates(
    queries: np.ndarray, points: np.ndarray, points_offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest (distance, global index) of each query among one block of points."""
    dist = squared_distances(queries, points)
    index = np.broadcast_to(np.arange(points.shape[0]) + points_offset, dist.shape)
    return smallest(dist, index, k)


def _merge_candidates(
    *parts: tuple[np.ndarray, np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of several blocks' candidates, the reduction step of the search."""
    dist = np.concatenate([p[0] for p in parts], axis=1)
    index = np.concatenate([p[1] for p in parts], axis=1)
    return smallest(dist, index, k)


def search_block_rows(n_features: int) -> int:
    """Rows per block of exact search: a pair task's (q x p) float64 distances and their int64
    partition indices, and both blocks in float64, fit a task's memory budget."""
    budget = task_bytes()
    by_pairs = int(np.sqrt(budget / 24))
    by_data = budget // (4 * 8 * max(n_features, 1))
    return max(config.get("neighbors.exact-min-block-rows"), min(by_pairs, by_data))


def in_search_blocks(X: da.Array) -> da.Array:
    """X in blocks of at most ``search_block_rows`` rows."""
    rows = search_block_rows(X.shape[1])
    return X if max(X.chunks[0]) <= rows else X.rechunk({0: rows})


def merged_candidates(
    queries: da.Array, points: da.Array, k: int, kernel: Callable
) -> list[tuple[Delayed]]:
    """For each block of queries, a delayed (distances, indices) of its k nearest points.

    One ``kernel(query_block, point_block, offset, k)`` task per pair of blocks, reduced in a
    tree of merges.
    """
    blocks = points.to_delayed(optimize_graph=False).ravel()
    offsets = row_offsets(points.chunks[0])
    candidates = dask.delayed(kernel, pure=True)
    merge = functools.partial(_merge_candidates, k=k)
    merged = []
    for q in queries.to_delayed(optimize_graph=False).ravel():
        parts = [candidates(q, p, int(off), k) for p, off in zip(blocks, offsets, strict=True)]
        merged.append((tree_reduce(parts, merge),))
    return merged


def neighbor_blocks(
    func: Callable, X: da.Array, per_block, n_neighbors: int, /, **kwargs
) -> da.Array:
    """Lazy (n, n_neighbors) int64: ``func(block, *per_block[i], row_offset=..., **kwargs)``
    over X's row blocks, as every search assembles its neighbor lists."""
    return map_row_blocks(
        func, [X], per_block=per_block, out_cols=n_neighbors, dtype=np.int64, **kwargs
    )


def blockwise_neighbors(X: da.Array, n_neighbors: int, kernel: Callable) -> da.Array:
    """Lazy (n, k): each row's k nearest other rows of X, found by ``kernel`` block pairs."""
    merged = merged_candidates(X, X, n_neighbors + 1, kernel)
    return neighbor_blocks(_select_neighbors, X, merged, n_neighbors, n_neighbors=n_neighbors)


def _select_neighbors(_block, merged, *, row_offset: int, n_neighbors: int) -> np.ndarray:
    """A block's neighbor indices: its k + 1 nearest, the row itself removed."""
    index = merged[1]
    rows = np.arange(index.shape[0]) + row_offset
    return drop_self(index, rows, n_neighbors).astype(np.int64)


def exact_neighbors(X: da.Array, n_neighbors: int) -> da.Array:
    """Exact kNN by blockwise brute force: one task per (query block, point block) pair.

    Parameters
    ----------
    X : dask array (n_samples, n_features)
    n_neighbors : neighbors per row, excluding the row itself

    Returns
    -------
    dask array (n_samples, n_neighbors) of int64
        Chunked in search blocks (sized from the task memory budget), not as X.
    """
    return blockwise_neighbors(in_search_blocks(X), n_neighbors, _block_candidates)


def exact_query(Y: da.Array, X: da.Array, n_neighbors: int) -> da.Array:
    """Lazy (len(Y), k): indices of the k rows of X nearest each row of Y, by brute force."""
    Y, X = in_search_blocks(Y), in_search_blocks(X)
    merged = merged_candidates(Y, X, n_neighbors, _block_candidates)
    return neighbor_blocks(_take_indices, Y, merged, n_neighbors)


def _take_indices(_block, merged, *, row_offset: int) -> np.ndarray:
    """The indices of a block's merged candidates (every one is a neighbor)."""
    return merged[1].astype(np.int64)


def rerank_block(
    points: np.ndarray,
    gathered: np.ndarray,
    local_indices: np.ndarray,
    needed: np.ndarray,
    *,
    row_offset: int,
    k: int,
    limits: tuple[int, int],
) -> np.ndarray:
    """Each row's k nearest among its candidates ``gathered[local_indices]``, as rows of
    ``needed``, by true distance (a batch of rows within ``limits`` at a time)."""
    from ..local.weights import batch_rows

    out = np.empty((points.shape[0], k), dtype=np.int64)
    # |x - y|^2 = |y|^2 - 2 x.y + |x|^2; the last term is the same for all of a row's candidates
    norms = np.einsum("ij,ij->i", gathered, gathered, dtype=np.float64)
    step = batch_rows(local_indices.shape[1], points.shape[1], limits)
    for start in range(0, points.shape[0], step):
        rows = slice(start, start + step)
        local = local_indices[rows]
        dots = np.matmul(gathered[local], points[rows, :, None])[..., 0]
        dist = norms[local] - 2.0 * dots
        _, best = smallest(dist, needed[local], k)  # ties broken by the smaller global row
        out[rows] = best
    return out


def rerank(X: da.Array, candidates: np.ndarray, n_neighbors: int) -> da.Array:
    """Lazy (n, k): each row's k nearest among its candidates, by true distance in X.

    Each row block reads only the rows its candidates live in (the weights stage's gather).
    """
    from ..local.weights import batch_limits, gather_plan

    plan = gather_plan(candidates, X.chunks[0])
    per_block = [(X[needed], local, needed) for needed, local in plan]
    limits = batch_limits()
    return neighbor_blocks(rerank_block, X, per_block, n_neighbors, k=n_neighbors, limits=limits)
