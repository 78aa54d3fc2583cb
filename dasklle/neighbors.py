"""Stage 1: the k nearest neighbors of every point, excluding the point itself.

``exact`` (blockwise brute force over dask chunks) is the reference; ``kd_tree``/``ball_tree``
are exact and fast in low dimension; ``nndescent`` (pynndescent) is approximate and fast in high
dimension. Every function returns int64 indices of shape (n_samples, n_neighbors), sorted by
distance, the point itself removed *by index* (so duplicated points stay correct).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from ._chunked import (
    map_row_blocks,
    private_block,
    row_block_tasks,
    row_offsets,
    take_rows,
    tree_reduce,
)
from .progress import compute, distributed_client

# "auto" picks exact brute force when its cost n^2 * D stays below this many multiply-adds
# (about 10 s on this 2-core machine in float64 BLAS), a KD-tree when the dimension is low, and
# pynndescent otherwise. pynndescent's numba compile costs ~20 s per process, so small jobs must
# not pay it.
BRUTE_MAX_WORK = 2e11
TREE_MAX_DIM = 15
# "projected": exact search for PROJECTED_CANDIDATES(k) candidates among the points projected on
# their top PROJECTED_DIM principal axes (estimated from a sample), then the candidates reranked
# by their true distance in full dimension. On digits-784 (20,000 points, k = 10) the projection
# alone finds 93% of the true neighbors and the reranked 2k candidates 99.99%, in a seventh of
# the time of full-dimensional brute force (figures in the README).
# Beyond PROJECTED_BRUTE_MAX_ROWS the search is partitioned (see below).
PROJECTED_DIM = 64
PROJECTED_MIN_DIM = 2 * PROJECTED_DIM
PROJECTED_SAMPLE_ROWS = 5000
SAMPLE_BYTES = 64 * 2**20  # samples brought to the client (fewer rows in very high dimension)
PROJECTED_BRUTE_MAX_ROWS = 50_000
PROJECTED_BLOCK_BYTES = 32 * 2**20
# Above PROJECTED_BRUTE_MAX_ROWS the rows are split into partitions by k-means on a projected
# sample; every point joins its PARTITION_COPIES nearest partitions (about PARTITION_ROWS points
# each); one task per partition searches, reranks and solves the weights there; each point keeps
# its best partition's list (recall 0.989 at 70,000 digits-784; 0.963 with 2 copies). No task
# holds more than a partition. The shuffle goes through a scratch directory on disk when every
# worker can read this machine's files (the threaded and synchronous schedulers, a local
# cluster): then each source chunk is read once and nothing in flight lives in memory. Otherwise
# (workers on other hosts) it goes through dask's memory, a group of partitions at a time, with
# PARTITION_GROUP_BYTES bounding the rows in flight.
PARTITION_ROWS = 20_000
PARTITION_BYTES = 128 * 2**20  # and fewer rows in very high dimension
PARTITION_COPIES = 3
PARTITION_SAMPLE_PER_PART = 200
PARTITION_GROUP_BYTES = 512 * 2**20


def projected_candidates_count(n_neighbors: int) -> int:
    return max(2 * n_neighbors, n_neighbors + 10)


def choose_algorithm(algorithm: str, n_samples: int, n_features: int) -> str:
    """Resolve ``"auto"`` (and the sklearn aliases) to the algorithm that will run."""
    if algorithm != "auto":
        return algorithm
    if n_features <= TREE_MAX_DIM:
        return "kd_tree"
    if float(n_samples) ** 2 * n_features <= BRUTE_MAX_WORK:
        return "brute"
    if n_features >= PROJECTED_MIN_DIM:
        return "projected"
    return "nndescent"


def drop_self(candidates: np.ndarray, rows: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Remove each row's own index from its k+1 candidates (or the farthest if it is absent)."""
    is_self = candidates == rows[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, axis=1)[:, :n_neighbors]


def _squared_distances(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    q = queries.astype(np.float64, copy=False)
    p = points.astype(np.float64, copy=False)
    d2 = (q * q).sum(1)[:, None] - 2.0 * (q @ p.T) + (p * p).sum(1)[None, :]
    return np.maximum(d2, 0.0)


def _smallest(dist: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest (distance, index) pairs of each row, ties broken by the smaller index."""
    k = min(k, dist.shape[1])
    if dist.shape[1] > k:
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        dist = np.take_along_axis(dist, part, 1)
        index = np.take_along_axis(index, part, 1)
    order = np.lexsort((index, dist), axis=1)
    return np.take_along_axis(dist, order, 1), np.take_along_axis(index, order, 1)


def _block_candidates(
    queries: np.ndarray, points: np.ndarray, points_offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    dist = _squared_distances(queries, points)
    index = np.broadcast_to(np.arange(points.shape[0]) + points_offset, dist.shape)
    return _smallest(dist, index, k)


def _merge_candidates(
    *parts: tuple[np.ndarray, np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    dist = np.concatenate([p[0] for p in parts], axis=1)
    index = np.concatenate([p[1] for p in parts], axis=1)
    return _smallest(dist, index, k)


def _finish_block(merged: tuple[np.ndarray, np.ndarray], *, row_offset: int, n_neighbors: int):
    index = merged[1]
    rows = np.arange(index.shape[0]) + row_offset
    return drop_self(index, rows, n_neighbors).astype(np.int64)


def _tree_reduce(parts: list, k: int):
    return tree_reduce(parts, functools.partial(_merge_candidates, k=k))


def exact_neighbors(X: da.Array, n_neighbors: int) -> da.Array:
    """Exact kNN by blockwise brute force: one task per (query block, point block) pair."""
    return _blockwise_neighbors(X, n_neighbors, _block_candidates)


def _blockwise_neighbors(X: da.Array, n_neighbors: int, kernel) -> da.Array:
    k = n_neighbors + 1
    blocks = X.to_delayed(optimize_graph=False).ravel()
    offsets = row_offsets(X.chunks[0])
    candidates = dask.delayed(kernel, pure=True)
    merged = []
    for q in blocks:
        parts = [candidates(q, p, int(off), k) for p, off in zip(blocks, offsets, strict=True)]
        merged.append((_tree_reduce(parts, k),))
    return map_row_blocks(
        _select_neighbors,
        [X],
        per_block=merged,
        out_cols=n_neighbors,
        dtype=np.int64,
        n_neighbors=n_neighbors,
    )


def _select_neighbors(_block, merged, *, row_offset: int, n_neighbors: int) -> np.ndarray:
    return _finish_block(merged, row_offset=row_offset, n_neighbors=n_neighbors)


def principal_axes(X: da.Array, n_axes: int, sample_rows: int = PROJECTED_SAMPLE_ROWS):
    """Mean and top n_axes principal axes (D, n_axes) of X, from evenly spaced sample rows."""
    n = X.shape[0]
    sample_rows = min(sample_rows, max(4 * n_axes, SAMPLE_BYTES // (4 * X.shape[1])))
    rows = np.unique(np.linspace(0, n - 1, min(n, sample_rows)).astype(np.int64))
    sample = take_rows(X, rows)
    sample = np.asarray(sample, dtype=np.float64 if X.shape[1] <= 2048 else np.float32)
    mean = sample.mean(axis=0)
    centred = sample - mean
    if X.shape[1] <= 2048:
        # eigenvectors of the sample covariance (D x D: cheaper than an SVD of the sample)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        return mean, np.ascontiguousarray(vectors[:, ::-1][:, :n_axes])
    from sklearn.utils.extmath import randomized_svd

    _, _, vt = randomized_svd(centred, n_axes, random_state=0)
    return mean.astype(np.float64), np.ascontiguousarray(vt.T.astype(np.float64))


def _project(block: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Projection on the principal axes, in float32 (it only ranks candidates)."""
    centred = np.asarray(block, dtype=np.float32) - mean.astype(np.float32)
    return centred @ axes.astype(np.float32)


def _fast_block_candidates(
    queries: np.ndarray, points: np.ndarray, points_offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest (distance, index) of each query among points, by scikit-learn's compiled
    brute-force top-k (float32 GEMM + heap, no n x n distance matrix kept)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, points.shape[0])
    dist, index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(points).kneighbors(queries)
    return _smallest(dist, index.astype(np.int64) + points_offset, k)


def projected_candidates(
    X: da.Array, n_neighbors: int, *, random_state: int = 0, n_jobs: int | None = None
) -> da.Array:
    """Lazy (n, K) candidate neighbors (self excluded) found among the projected points."""
    n_candidates = min(projected_candidates_count(n_neighbors), X.shape[0] - 1)
    mean, axes = principal_axes(X, min(PROJECTED_DIM, X.shape[1]))
    Z = X.map_blocks(
        _project, *_shared(mean, axes), dtype=np.float32, chunks=(X.chunks[0], axes.shape[1])
    )
    rows = max(1, PROJECTED_BLOCK_BYTES // (4 * axes.shape[1]))
    Z = Z.rechunk({0: rows})
    return _blockwise_neighbors(Z, n_candidates, _fast_block_candidates)


def partitioned_graph(
    X: da.Array,
    n_neighbors: int,
    *,
    reg: float | None,
    random_state: int = 0,
    compute=None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Neighbors (and, given ``reg``, barycentric weights) computed inside partitions.

    The input rows are shuffled once into partitions that keep each point with its likely
    neighbors (k-means on a projected sample; every point joins its PARTITION_COPIES nearest
    partitions). Every source chunk is read once; one task per partition projects its rows,
    finds 2k candidates among them, reranks them by true distance and solves the weights with
    rows it already holds: no random-access gather of neighbor vectors. Each row keeps the
    partition whose k neighbors are nearest in total. Returns (n, k) int64 indices and float64
    weights (None without ``reg``), computed with ``compute(*delayed, label=...)`` (default
    ``dask.compute``).
    """
    compute = compute or _default_compute
    from sklearn.cluster import KMeans

    n = X.shape[0]
    n_candidates = min(projected_candidates_count(n_neighbors), n - 1)
    mean, axes = principal_axes(X, min(PROJECTED_DIM, X.shape[1]))
    part_rows = min(
        PARTITION_ROWS, max(4 * n_candidates, PARTITION_BYTES // (X.dtype.itemsize * X.shape[1]))
    )
    n_parts = max(2, int(np.ceil(PARTITION_COPIES * n / part_rows)))
    n_sample = min(n, n_parts * PARTITION_SAMPLE_PER_PART, SAMPLE_BYTES // (4 * X.shape[1]))
    rows = np.unique(np.linspace(0, n - 1, max(n_sample, n_parts)).astype(np.int64))
    sample = take_rows(X, rows)
    centres = (
        KMeans(n_clusters=n_parts, n_init=1, max_iter=50, random_state=random_state)
        .fit(_project(np.asarray(sample), mean, axes))
        .cluster_centers_.astype(np.float32)
    )
    results = []
    shared_mean, shared_axes, shared_centres = _shared(mean, axes, centres)
    with shuffle_directory() as directory:
        if directory is not None:
            n_groups = 1
        else:
            # rows in flight: each row travels to PARTITION_COPIES partitions
            in_flight = PARTITION_COPIES * X.nbytes
            n_groups = min(n_parts, max(1, int(np.ceil(in_flight / PARTITION_GROUP_BYTES))))
        getitem = dask.delayed(_item, pure=True)
        solve = dask.delayed(_partition_graph, pure=True)
        for g, group in enumerate(np.array_split(np.arange(n_parts), n_groups)):
            assigned = row_block_tasks(
                _assign_rows,
                [X],
                centres=shared_centres,
                group=group,
                mean=shared_mean,
                axes=shared_axes,
                directory=directory,
            )
            parts = [
                solve(
                    *(getitem(block, j) for block in assigned),
                    mean=shared_mean,
                    axes=shared_axes,
                    n_candidates=n_candidates,
                    k=n_neighbors,
                    reg=reg,
                )
                for j in range(len(group))
            ]
            results.extend(compute(*parts, label=f"neighbors {g + 1}/{n_groups}"))
    pieces = [tuple(np.asarray(a) for a in part) for part in results]
    dummy = np.empty((n, 0))
    indices = _best_copy(dummy, *pieces, row_offset=0, k=n_neighbors, column=1)
    if reg is None:
        return indices, None
    return indices, _best_copy(dummy, *pieces, row_offset=0, k=n_neighbors, column=2)


def _shared(*arrays: np.ndarray) -> list:
    """Each array as one key that tasks depend on, rather than a copy inside every task.

    A numpy argument is pickled into each task that uses it; a worker holds the specs of every
    task queued on it, so at 20,480 features the 10 MB of PCA axes in ~40 queued partition
    tasks took 900 MB of a worker's memory, outside dask's accounting (measured, out-of-core
    test). As a key, an array travels to each worker once and counts as managed memory. On a
    distributed cluster the arrays are scattered: as graph keys they would travel inside every
    graph the client sends.
    """
    client = distributed_client()
    if client is None:
        return [dask.delayed(a, pure=True) for a in arrays]
    return client.scatter(list(arrays), hash=True)


def _default_compute(*collections, label: str):
    return compute(*collections, label=label)


@contextlib.contextmanager
def shuffle_directory():
    """A scratch directory that every worker can read, removed afterwards; None if there is none.

    Under the threaded and synchronous schedulers, and on a cluster whose workers all run on
    this host, it is a new directory under dask's ``temporary-directory`` (the system's temporary
    directory if unset).
    """
    if not _workers_on_this_host():
        yield None
        return
    base = dask.config.get("temporary-directory", None) or None
    path = tempfile.mkdtemp(prefix="dasklle-shuffle-", dir=base)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _workers_on_this_host() -> bool:
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):  # no distributed client: this process computes
        return True
    return set(client.run(socket.gethostname).values()) <= {socket.gethostname()}


def _assign_rows(block, *, row_offset: int, centres, group, mean, axes, directory=None) -> list:
    """For each partition in group: (global rows, their data) of this block's rows joining it.

    With a directory, the data goes to a file there and its path stands in for it. The file is
    written under a temporary name and renamed, so a task that is retried (a lost worker)
    overwrites it whole and a reader never sees a partial one.
    """
    members = _partition_members(_project(block, mean, axes), centres)
    pieces = []
    for p in group:
        data = block[members[p]]
        rows = members[p] + row_offset
        if directory is not None:
            path = os.path.join(directory, f"partition{p}-rows{row_offset}.npy")
            partial = f"{path}.{uuid.uuid4().hex}.partial"
            with open(partial, "wb") as f:
                np.save(f, data, allow_pickle=False)
            os.replace(partial, path)
            data = path
        pieces.append((rows, data))
    return pieces


def _gather_pieces(pieces) -> tuple[np.ndarray, np.ndarray]:
    """(global rows, data) of a partition from its pieces (arrays, or .npy paths)."""
    ids = np.concatenate([p[0] for p in pieces])
    points = None
    start = 0
    for rows, data in pieces:
        if isinstance(data, str):
            data = np.load(data, allow_pickle=False)
        if points is None:
            points = np.empty((len(ids), data.shape[1]), dtype=data.dtype)
        points[start : start + len(rows)] = data
        start += len(rows)
    return ids, points


def _partition_graph(*pieces, mean, axes, n_candidates: int, k: int, reg: float | None):
    """(rows, k neighbor rows, weights, total squared distance) within one partition."""
    from .weights import barycenter_weights, batch_rows

    ids, points = _gather_pieces(pieces)
    m = len(ids)
    z = _project(points, mean, axes)
    K = min(n_candidates, m - 1)
    found_d, found = _fast_block_candidates(z, z, 0, K + 1)
    is_self = found == np.arange(m)[:, None]
    cand = np.take_along_axis(found, np.argsort(is_self, axis=1, kind="stable")[:, :K], 1)
    local = _rerank_block(points, points, cand, np.arange(m), row_offset=0, k=min(k, K))
    neighbor_rows = np.full((m, k), -1, dtype=np.int64)
    neighbor_rows[:, : local.shape[1]] = ids[local]
    score = np.full(m, np.inf)
    w = np.zeros((m, k))
    if local.shape[1] == k:
        step = batch_rows(k, points.shape[1])
        for start in range(0, m, step):
            r = slice(start, start + step)
            neighbors = points[local[r]]
            diff = neighbors.astype(np.float64) - points[r, None, :]
            score[r] = np.einsum("ijd,ijd->i", diff, diff)
            if reg is not None:
                w[r] = barycenter_weights(points[r], neighbors, reg)
    return ids, neighbor_rows, w, score


def _best_copy(block, *pieces, row_offset: int, k: int, column: int) -> np.ndarray:
    """Per row, the list from the partition where its k neighbors are nearest in total."""
    n_rows = block.shape[0]
    ids = np.concatenate([p[0] for p in pieces]) - row_offset
    values = np.concatenate([p[column] for p in pieces])
    score = np.concatenate([p[3] for p in pieces])
    # sort by (row, score, position): the first entry of each row is its best copy
    order = np.lexsort((np.arange(len(ids)), score, ids))
    ids, values, score = ids[order], values[order], score[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    if first.sum() != n_rows or not np.all(np.isfinite(score[first])):
        raise RuntimeError(
            "partitioned neighbor search: a point's partitions hold fewer than n_neighbors "
            "other points; use neighbors_algorithm='brute' or 'nndescent'."
        )
    out = np.empty((n_rows, k), dtype=values.dtype)
    out[ids[first]] = values[first]
    return out


def _item(parts: list, p: int):
    return parts[p]


def _partition_members(z: np.ndarray, centres: np.ndarray) -> list[np.ndarray]:
    """For each partition: the (ascending) rows of projected points z that join it, the
    PARTITION_COPIES nearest centres of each row.

    Distances by a matrix product (``_squared_distances``) and members by one sort: the
    broadcast difference it replaces took 1.4 s per 10,000 rows with 150 partitions (136 s of
    the 1,000,000-point run, quadratic in n) and a 630 MB temporary.
    """
    d2 = _squared_distances(z, centres)
    copies = min(PARTITION_COPIES, centres.shape[0])
    flat = np.argpartition(d2, copies - 1, axis=1)[:, :copies].ravel()
    order = np.argsort(flat, kind="stable")  # stable: rows ascending within each partition
    bounds = np.searchsorted(flat[order], np.arange(centres.shape[0] + 1))
    rows = order // copies
    return [rows[bounds[p] : bounds[p + 1]] for p in range(centres.shape[0])]


def _rerank_block(
    points: np.ndarray,
    gathered: np.ndarray,
    local_indices: np.ndarray,
    needed: np.ndarray,
    *,
    row_offset: int,
    k: int,
) -> np.ndarray:
    from .weights import batch_rows

    out = np.empty((points.shape[0], k), dtype=np.int64)
    # |x - y|^2 = |y|^2 - 2 x.y + |x|^2; the last term is the same for all of a row's candidates
    norms = np.einsum("ij,ij->i", gathered, gathered, dtype=np.float64)
    step = batch_rows(local_indices.shape[1], points.shape[1])
    for start in range(0, points.shape[0], step):
        rows = slice(start, start + step)
        local = local_indices[rows]
        dots = np.matmul(gathered[local], points[rows, :, None])[..., 0]
        dist = norms[local] - 2.0 * dots
        _, best = _smallest(dist, needed[local], k)  # ties broken by the smaller global row
        out[rows] = best
    return out


def rerank(X: da.Array, candidates: np.ndarray, n_neighbors: int) -> da.Array:
    """Lazy (n, k): each row's k nearest among its candidates, by true distance in X.

    Each row block reads only the rows its candidates live in (the weights stage's gather).
    """
    from .weights import gather_plan

    plan = gather_plan(candidates, X.chunks[0])
    per_block = [(X[needed], local, needed) for needed, local in plan]
    return map_row_blocks(
        _rerank_block,
        [X],
        per_block=per_block,
        out_cols=n_neighbors,
        dtype=np.int64,
        k=n_neighbors,
    )


@dataclass
class NeighborIndex:
    """A fitted search structure over the training points, to query new points later.

    ``index`` is a persisted dask ``Delayed``: with a distributed client the fitted tree or graph
    stays on the worker that built it and the client holds only a reference; with the local
    schedulers it is the object itself. Pickling materialises it (the user asked for a copy).
    When a fit resumed its neighbors from a checkpoint, ``index`` is None and is built from
    ``points`` on the first query.
    """

    algorithm: str
    index: Any  # Delayed (tree or pynndescent index), the training dask array (brute), or None
    points: da.Array | None = None
    build_options: dict | None = None

    def query(self, Y: da.Array, n_neighbors: int) -> da.Array:
        """Indices (into the training points) of the n_neighbors nearest training points of Y."""
        if self.algorithm == "brute":
            return _exact_query(Y, self.index, n_neighbors)
        if self.index is None:
            self.index = _build_index(self.points, self.algorithm, **(self.build_options or {}))
        return map_row_blocks(
            _query_block,
            [Y],
            per_block=[(self.index,)] * Y.numblocks[0],
            out_cols=n_neighbors,
            dtype=np.int64,
            algorithm=self.algorithm,
            n_neighbors=n_neighbors,
        )

    def __getstate__(self):
        if self.algorithm == "brute":
            return self.__dict__
        if self.index is None:
            self.index = _build_index(self.points, self.algorithm, **(self.build_options or {}))
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


def deferred_index(
    X: da.Array, algorithm: str, n_neighbors: int, random_state: int, n_jobs: int | None
) -> NeighborIndex:
    """An index over X that is built only if and when it is first queried."""
    if algorithm == "brute":
        return NeighborIndex("brute", X)
    options = dict(n_neighbors=n_neighbors, random_state=random_state, n_jobs=n_jobs)
    return NeighborIndex(algorithm, None, X, options)


def _build_index(X: da.Array, algorithm: str, *, n_neighbors, random_state, n_jobs) -> Delayed:
    """Fit a tree or a pynndescent graph over all of X in one task, persisted where it ran."""
    points = private_block(X, seed="neighbor-index")
    if algorithm in ("kd_tree", "ball_tree"):
        return dask.delayed(_fit_tree, pure=True)(points, algorithm).persist()
    fit = dask.delayed(_fit_nndescent, pure=True)
    return fit(points, n_neighbors, random_state, n_jobs).persist()


def _as_graph_key(obj: Any) -> Delayed:
    """obj as a single graph key, named without hashing it (tokenising would pickle the index)."""
    return dask.delayed(obj, name=f"neighbor-index-{uuid.uuid4().hex}")


def _query_block(block, index, *, row_offset: int, algorithm: str, n_neighbors: int):
    if algorithm == "nndescent":
        index.prepare()
        return index.query(block, k=n_neighbors)[0].astype(np.int64)
    return index.query(block, k=n_neighbors, return_distance=False).astype(np.int64)


def _exact_query(Y: da.Array, X: da.Array, n_neighbors: int) -> da.Array:
    blocks = X.to_delayed(optimize_graph=False).ravel()
    offsets = row_offsets(X.chunks[0])
    candidates = dask.delayed(_block_candidates, pure=True)
    merged = []
    for q in Y.to_delayed(optimize_graph=False).ravel():
        parts = [
            candidates(q, p, int(off), n_neighbors) for p, off in zip(blocks, offsets, strict=True)
        ]
        merged.append((_tree_reduce(parts, n_neighbors),))
    return map_row_blocks(
        _take_indices, [Y], per_block=merged, out_cols=n_neighbors, dtype=np.int64
    )


def _take_indices(_block, merged, *, row_offset: int) -> np.ndarray:
    return merged[1].astype(np.int64)


def _fit_tree(points: np.ndarray, algorithm: str):
    from sklearn.neighbors import BallTree, KDTree

    tree_class = KDTree if algorithm == "kd_tree" else BallTree
    return tree_class(points)


def _tree_self_neighbors(block, tree, *, row_offset: int, n_neighbors: int) -> np.ndarray:
    k = min(n_neighbors + 1, tree.data.shape[0])
    candidates = tree.query(block, k=k, return_distance=False, sort_results=True)
    rows = np.arange(block.shape[0]) + row_offset
    return drop_self(candidates, rows, n_neighbors).astype(np.int64)


def _nndescent_threads(n_jobs: int | None) -> int:
    limit = int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return limit
    return max(1, min(n_jobs, limit))


def _fit_nndescent(points: np.ndarray, n_neighbors: int, random_state: int, n_jobs: int | None):
    from pynndescent import NNDescent

    return NNDescent(
        points,
        n_neighbors=min(n_neighbors + 1, points.shape[0] - 1) if points.shape[0] > 2 else 2,
        random_state=random_state,
        n_jobs=_nndescent_threads(n_jobs),
        low_memory=True,
        compressed=False,
    )


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
    algorithm : "auto", "brute", "kd_tree", "ball_tree" or "nndescent"
    random_state : seed for pynndescent
    n_jobs : threads for pynndescent inside its task (None means 1)

    Returns
    -------
    indices : lazy dask array (n_samples, n_neighbors) of int64
    index : NeighborIndex to query new points with the same algorithm
    """
    algorithm = choose_algorithm(algorithm, *X.shape)
    if algorithm == "brute":
        return exact_neighbors(X, n_neighbors), NeighborIndex("brute", X)
    if algorithm == "projected" and X.shape[0] > PROJECTED_BRUTE_MAX_ROWS:
        found, _ = partitioned_graph(X, n_neighbors, reg=None, random_state=random_state)
        return da.from_array(found, chunks=(X.chunks[0], -1)), NeighborIndex("brute", X)
    if algorithm == "projected":
        # the candidates must be known to plan the rerank's gather: computed here
        (candidates,) = compute(
            projected_candidates(X, n_neighbors, random_state=random_state, n_jobs=n_jobs)
        )
        return rerank(X, candidates, n_neighbors), NeighborIndex("brute", X)
    # Tree and graph indexes need all points in one task. It runs on a worker and, persisted,
    # the fitted index stays there: every query task depends on that one key, so it is shipped
    # once per worker, never through the client.
    index = _build_index(
        X, algorithm, n_neighbors=n_neighbors, random_state=random_state, n_jobs=n_jobs
    )
    block_neighbors = (
        _tree_self_neighbors if algorithm in ("kd_tree", "ball_tree") else _nndescent_self_neighbors
    )
    indices = map_row_blocks(
        block_neighbors,
        [X],
        per_block=[(index,)] * X.numblocks[0],
        out_cols=n_neighbors,
        dtype=np.int64,
        n_neighbors=n_neighbors,
    )
    return indices, NeighborIndex(algorithm, index)


def _nndescent_self_neighbors(block, index, *, row_offset: int, n_neighbors: int) -> np.ndarray:
    rows = np.arange(block.shape[0]) + row_offset
    candidates = index.neighbor_graph[0][rows].astype(np.int64)
    return drop_self(candidates, rows, n_neighbors)
