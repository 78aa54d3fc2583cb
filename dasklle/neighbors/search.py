"""``nearest_neighbors``: runs the chosen search over every row and returns its index."""

from __future__ import annotations

import dask.array as da

from .choose import choose_algorithm, runs_partitioned
from .exact import exact_neighbors, neighbor_blocks
from .index import NeighborIndex, build_index, partitioned_index
from .nndescent import nndescent_self_neighbors
from .partitioned import partitioned_graph
from .projected import projected_neighbors
from .trees import tree_self_neighbors


def nearest_neighbors(
    X: da.Array,
    n_neighbors: int,
    *,
    algorithm: str = "auto",
    random_state: int = 0,
    n_jobs: int | None = None,
) -> tuple[da.Array, NeighborIndex]:
    """The n_neighbors nearest neighbors of every row of X and a reusable search index.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features), rows chunked
    n_neighbors : number of neighbors, excluding the point itself
    algorithm : "auto", "brute", "kd_tree", "ball_tree", "nndescent" or "projected"
    random_state : seed for pynndescent and for the partitioned search's k-means
    n_jobs : threads for pynndescent inside its task (None means 1)

    Returns
    -------
    indices : lazy dask array (n_samples, n_neighbors) of int64
    index : NeighborIndex to query new points with the same algorithm
    """
    algorithm = choose_algorithm(algorithm, *X.shape, n_neighbors)
    if algorithm == "brute":
        return exact_neighbors(X, n_neighbors), NeighborIndex("brute", X)
    if runs_partitioned(algorithm, X.shape[0]):
        found, _, partitions = partitioned_graph(
            X, n_neighbors, reg=None, random_state=random_state, keep_index=True
        )
        return da.from_array(found, chunks=(X.chunks[0], -1)), partitioned_index(X, partitions)
    if algorithm == "projected":
        return projected_neighbors(X, n_neighbors), NeighborIndex("brute", X)
    # Tree and graph indexes need all points in one task. It runs on a worker and, persisted,
    # the fitted index stays there: every query task depends on that one key, so it is shipped
    # once per worker, never through the client.
    index = build_index(
        X, algorithm, n_neighbors=n_neighbors, random_state=random_state, n_jobs=n_jobs
    )
    block_neighbors = (
        tree_self_neighbors if algorithm in ("kd_tree", "ball_tree") else nndescent_self_neighbors
    )
    per_block = [(index,)] * X.numblocks[0]
    indices = neighbor_blocks(block_neighbors, X, per_block, n_neighbors, n_neighbors=n_neighbors)
    return indices, NeighborIndex(algorithm, index)
