"""KD and ball trees (scikit-learn's): exact and fast in low dimension.

The tree is fitted over all points in one task; its query ranks equal distances by row index,
as every exact search does.
"""

from __future__ import annotations

import numpy as np

from .exact import drop_self, smallest


def fit_tree(points: np.ndarray, algorithm: str):
    """A ``KDTree`` (``"kd_tree"``) or ``BallTree`` (``"ball_tree"``) over points."""
    from sklearn.neighbors import BallTree, KDTree

    tree_class = KDTree if algorithm == "kd_tree" else BallTree
    return tree_class(points)


def tree_self_neighbors(block, tree, *, row_offset: int, n_neighbors: int) -> np.ndarray:
    """A block of the training points' own neighbors (each point itself removed)."""
    candidates = tree_query(tree, block, n_neighbors + 1)
    rows = np.arange(block.shape[0]) + row_offset
    return drop_self(candidates, rows, n_neighbors)


def tree_query(tree, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k nearest tree points of each query, ties broken by the smaller index.

    The tree orders equal distances arbitrarily. One extra neighbor shows the rows whose k-th
    distance is tied; only those fetch every point within it.
    """
    n_points = tree.data.shape[0]
    k = min(k, n_points)
    dist, index = tree.query(queries, k=min(k + 1, n_points))
    dist, index = smallest(dist, index.astype(np.int64), k + 1)
    if index.shape[1] > k:
        tied = np.flatnonzero(dist[:, k - 1] == dist[:, k])
        index = index[:, :k]
        if len(tied):
            index[tied] = _within(tree, queries[tied], dist[tied, k - 1], k)
    return np.ascontiguousarray(index)


def _within(tree, queries: np.ndarray, radius: np.ndarray, k: int) -> np.ndarray:
    """For each query, the k smallest (distance, index) among the points within its radius."""
    # one step outward: the tree compares squared radii, and sqrt(r^2)^2 may fall below r^2
    found, dist = tree.query_radius(queries, np.nextafter(radius, np.inf), return_distance=True)
    return np.stack([i[np.lexsort((i, d))[:k]] for i, d in zip(found, dist, strict=True)])
