"""The fitted search structure that ``transform`` queries: ``NeighborIndex``.

It wraps what each search leaves behind: the training array (exact search), a tree or a
pynndescent graph persisted where it was built, or the partitioned search's ``PartitionIndex``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
from dask.delayed import Delayed

from ..tasks.blocks import private_block
from ..tasks.progress import compute
from .exact import exact_query, neighbor_blocks
from .nndescent import fit_nndescent, nndescent_query
from .partitioned import PartitionIndex
from .trees import fit_tree, tree_query


@dataclass
class NeighborIndex:
    """A fitted search structure over the training points, to query new points later.

    ``index`` is a persisted dask ``Delayed``: with a distributed client the fitted tree or graph
    stays on the worker that built it and the client holds only a reference; with the local
    schedulers it is the object itself. Pickling materialises it (the user asked for a copy).
    When a fit resumed its neighbors from a checkpoint, ``index`` is None and is built from
    ``points`` on the first query. For ``"partitioned"``, ``index`` is the fit's
    ``PartitionIndex``; a pickled copy searches exactly (``"brute"``), the files staying behind.
    """

    algorithm: str
    index: Any  # Delayed (tree or pynndescent index), the training dask array (brute), or None
    points: da.Array | None = None
    build_options: dict | None = None

    def query_with_weights(self, Y: da.Array, n_neighbors: int, reg: float):
        """(indices, weights) of Y's nearest training points, computed; the weights are None
        where the search does not compute them on the way (all but the partitioned one)."""
        if self.algorithm == "partitioned":
            return self.index.query(Y, n_neighbors, reg)
        (indices,) = compute(self.query(Y, n_neighbors))
        return indices, None

    def query(self, Y: da.Array, n_neighbors: int) -> da.Array:
        """Indices (into the training points) of the n_neighbors nearest training points of Y."""
        if self.algorithm == "partitioned":
            return da.from_array(self.index.query(Y, n_neighbors, reg=None)[0])
        if self.algorithm == "brute":
            return exact_query(Y, self.index, n_neighbors)
        if self.index is None:
            self.index = build_index(self.points, self.algorithm, **(self.build_options or {}))
        per_block = [(self.index,)] * Y.numblocks[0]
        return neighbor_blocks(
            _query_block, Y, per_block, n_neighbors, algorithm=self.algorithm, k=n_neighbors
        )

    def __getstate__(self):
        if self.algorithm == "brute":
            return self.__dict__
        if self.algorithm == "partitioned":
            return {**self.__dict__, "algorithm": "brute", "index": self.points}
        if self.index is None:
            self.index = build_index(self.points, self.algorithm, **(self.build_options or {}))
        # not progress.compute: the index stays held, so the scheduler cannot forget its key
        (value,) = dask.compute(self.index)
        return {"algorithm": self.algorithm, "index": value}

    def __setstate__(self, state):
        index = state["index"]
        if state["algorithm"] != "brute" and not isinstance(index, Delayed):
            index = _as_graph_key(index)
        self.__dict__.update(
            algorithm=state["algorithm"], index=index, points=None, build_options=None
        )


def partitioned_index(X: da.Array, partitions: PartitionIndex | None) -> NeighborIndex:
    """The partitioned search's index when its partitions were kept, else exact search."""
    if partitions is None:
        return NeighborIndex("brute", X)
    return NeighborIndex("partitioned", partitions, X)


def deferred_index(
    X: da.Array, algorithm: str, n_neighbors: int, random_state: int, n_jobs: int | None
) -> NeighborIndex:
    """An index over X that is built only if and when it is first queried (exact search for
    the brute and projected algorithms)."""
    if algorithm in ("brute", "projected"):
        return NeighborIndex("brute", X)
    options = dict(n_neighbors=n_neighbors, random_state=random_state, n_jobs=n_jobs)
    return NeighborIndex(algorithm, None, X, options)


def build_index(X: da.Array, algorithm: str, *, n_neighbors, random_state, n_jobs) -> Delayed:
    """Fit a tree or a pynndescent graph over all of X in one task, persisted where it ran."""
    points = private_block(X, seed="neighbor-index")
    if algorithm in ("kd_tree", "ball_tree"):
        return dask.delayed(fit_tree, pure=True)(points, algorithm).persist()
    fit = dask.delayed(fit_nndescent, pure=True)
    return fit(points, n_neighbors, random_state, n_jobs).persist()


def _as_graph_key(obj: Any) -> Delayed:
    """obj as a single graph key, named without hashing it (tokenising would pickle the index)."""
    return dask.delayed(obj, name=f"neighbor-index-{uuid.uuid4().hex}")


def _query_block(block, index, *, row_offset: int, algorithm: str, k: int):
    """The k nearest indexed points of a block of new points."""
    if algorithm == "nndescent":
        return nndescent_query(index, block, k)
    return tree_query(index, block, k)
