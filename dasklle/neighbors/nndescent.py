"""pynndescent's approximate search: fast in high dimension, fitted over all points in one task."""

from __future__ import annotations

import os

import numpy as np

from .exact import drop_self


def _nndescent_threads(n_jobs: int | None) -> int:
    """Threads for pynndescent: one unless asked, and never more than numba may start."""
    limit = int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return limit
    return max(1, min(n_jobs, limit))


def fit_nndescent(points: np.ndarray, n_neighbors: int, random_state: int, n_jobs: int | None):
    """A pynndescent index over points whose graph holds each point's k + 1 nearest."""
    from pynndescent import NNDescent

    return NNDescent(
        points,
        n_neighbors=min(n_neighbors + 1, points.shape[0] - 1) if points.shape[0] > 2 else 2,
        random_state=random_state,
        n_jobs=_nndescent_threads(n_jobs),
        low_memory=True,
        compressed=False,
    )


def nndescent_self_neighbors(block, index, *, row_offset: int, n_neighbors: int) -> np.ndarray:
    """A block of the training points' own neighbors, read from the index's graph."""
    rows = np.arange(block.shape[0]) + row_offset
    candidates = index.neighbor_graph[0][rows].astype(np.int64)
    return drop_self(candidates, rows, n_neighbors)


def nndescent_query(index, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices of the (approximately) k nearest indexed points of each query."""
    index.prepare()
    return index.query(queries, k=k)[0].astype(np.int64)
