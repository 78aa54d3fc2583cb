"""Stage 1: the k nearest neighbors of every point, excluding the point itself.

``exact`` (blockwise brute force over dask chunks) is the reference; ``kd_tree``/``ball_tree``
are exact and fast in low dimension; ``nndescent`` (pynndescent) is approximate and fast in high
dimension. Every function returns int64 indices of shape (n_samples, n_neighbors), sorted by
distance, the point itself removed *by index* (so duplicated points stay correct). The exact
searches rank equal distances by row index, the lower first, whatever the chunking.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import tempfile
import uuid
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from ..exceptions import FallbackWarning
from ..tasks.blocks import (
    map_row_blocks,
    private_block,
    row_block_tasks,
    row_offsets,
    take_rows,
    tree_reduce,
)
from ..tasks.memory import rows_within, task_bytes
from ..tasks.progress import compute, distributed_client

# "auto" picks a KD-tree in low dimension while the tree fits a task's memory, exact brute force
# while its cost n^2 * D stays below BRUTE_MAX_WORK multiply-adds (about 10 s on 2 cores in
# float64 BLAS), and the projected search otherwise (partitioned above PROJECTED_BRUTE_MAX_ROWS),
# in every dimension: no task then holds more than a partition. pynndescent runs when asked for.
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


def choose_algorithm(algorithm: str, n_samples: int, n_features: int, n_neighbors: int = 10) -> str:
    """Resolve ``"auto"`` to the algorithm that will run, and a single-task index that would
    not fit a task's memory to the partitioned search (with a warning)."""
    if algorithm == "auto":
        if n_features <= TREE_MAX_DIM and index_fits("kd_tree", n_samples, n_features, n_neighbors):
            return "kd_tree"
        if float(n_samples) ** 2 * n_features <= BRUTE_MAX_WORK:
            return "brute"
        return "projected"
    if not index_fits(algorithm, n_samples, n_features, n_neighbors):
        warnings.warn(
            f"neighbors_algorithm={algorithm!r} builds one index over all {n_samples:,} points "
            "in one task, more than a task's share of the workers' memory; running the "
            "partitioned search ('projected') instead.",
            FallbackWarning,
            stacklevel=3,
        )
        return "projected"
    return algorithm


# pynndescent's numba compilation takes this much of a worker's memory before any data.
NNDESCENT_FIXED_BYTES = 400 * 2**20


def index_fits(algorithm: str, n_samples: int, n_features: int, n_neighbors: int) -> bool:
    """Whether a single-task index (tree or pynndescent graph) over all points fits a task."""
    if algorithm in ("kd_tree", "ball_tree"):  # float64 copy of the data, node bounds, indices
        need = n_samples * (16 * n_features + 16)
    elif algorithm == "nndescent":  # data, search trees, and the graph's heaps while it builds
        need = NNDESCENT_FIXED_BYTES + n_samples * (12 * n_features + 64 * (n_neighbors + 1))
    else:
        return True
    return need <= task_bytes()


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
    """Exact kNN by blockwise brute force: one task per (query block, point block) pair.

    The result is chunked in search blocks (sized from the task memory budget), not as X.
    """
    return _blockwise_neighbors(_in_search_blocks(X), n_neighbors, _block_candidates)


def search_block_rows(n_features: int) -> int:
    """Rows per block of exact search: a pair task's (q x p) float64 distances and their int64
    partition indices, and both blocks in float64, fit a task's memory budget."""
    budget = task_bytes()
    by_pairs = int(np.sqrt(budget / 24))
    by_data = budget // (4 * 8 * max(n_features, 1))
    return max(256, min(by_pairs, by_data))


def _in_search_blocks(X: da.Array) -> da.Array:
    rows = search_block_rows(X.shape[1])
    return X if max(X.chunks[0]) <= rows else X.rechunk({0: rows})


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
    keep_index: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, PartitionIndex | None]:
    """Neighbors (and, given ``reg``, barycentric weights) computed inside partitions.

    The input rows are shuffled once into partitions that keep each point with its likely
    neighbors (k-means on a projected sample; every point joins its PARTITION_COPIES nearest
    partitions). Every source chunk is read once; one task per partition projects its rows,
    finds 2k candidates among them, reranks them by true distance and solves the weights with
    rows it already holds: no random-access gather of neighbor vectors. Each row keeps the
    partition whose k neighbors are nearest in total. Returns (n, k) int64 indices, float64
    weights (None without ``reg``) and, with ``keep_index`` and a shuffle through files, the
    partitions as an index to search new points in (else None); computed with
    ``compute(*delayed, label=...)`` (default ``dask.compute``).
    """
    compute = compute or _default_compute
    from sklearn.cluster import KMeans

    n = X.shape[0]
    n_candidates = min(projected_candidates_count(n_neighbors), n - 1)
    mean, axes = principal_axes(X, min(PROJECTED_DIM, X.shape[1]))
    part_rows = max(4 * n_candidates, min(PARTITION_ROWS, partition_rows(X.shape[1], X.dtype)))
    n_parts = max(2, int(np.ceil(PARTITION_COPIES * n / part_rows)))
    n_sample = min(n, n_parts * PARTITION_SAMPLE_PER_PART, SAMPLE_BYTES // (4 * X.shape[1]))
    rows = np.unique(np.linspace(0, n - 1, max(n_sample, n_parts)).astype(np.int64))
    sample = take_rows(X, rows)
    centres = (
        KMeans(n_clusters=n_parts, n_init=1, max_iter=50, random_state=random_state)
        .fit(_project(np.asarray(sample), mean, axes))
        .cluster_centers_.astype(np.float32)
    )
    directory = new_shuffle_directory()
    try:
        results = _solve_partitions(
            X, mean, axes, centres, directory, n_candidates, n_neighbors, reg, compute
        )
    except BaseException:
        _remove(directory)
        raise
    index = None
    if keep_index and directory is not None:
        members = [np.asarray(part[0]) for part in results]
        index = PartitionIndex(mean, axes, centres, n_candidates, directory, X.chunks[0], members)
    else:
        _remove(directory)
    indices, weights = _best_copies(results, n, n_neighbors, with_weights=reg is not None)
    return indices, weights, index


def _best_copies(results: list, n_rows: int, k: int, with_weights: bool = True):
    """(indices, weights or None) of each row from the partition copy where its neighbors are
    nearest."""
    pieces = [tuple(np.asarray(a) for a in part) for part in results]
    dummy = np.empty((n_rows, 0))
    indices = _best_copy(dummy, *pieces, row_offset=0, k=k, column=1)
    if not with_weights:
        return indices, None
    return indices, _best_copy(dummy, *pieces, row_offset=0, k=k, column=2)


def _solve_partitions(X, mean, axes, centres, directory, n_candidates, n_neighbors, reg, compute):
    """Shuffle X's rows into the partitions and solve each; one result per partition."""
    n_parts = centres.shape[0]
    if directory is not None:
        n_groups = 1
    else:
        # rows in flight: each row travels to PARTITION_COPIES partitions
        in_flight = PARTITION_COPIES * X.nbytes
        n_groups = min(n_parts, max(1, int(np.ceil(in_flight / PARTITION_GROUP_BYTES))))
    shared_mean, shared_axes, shared_centres = _shared(mean, axes, centres)
    solve = dask.delayed(_partition_graph, pure=True)
    results = []
    for g, group in enumerate(np.array_split(np.arange(n_parts), n_groups)):
        shuffled = _shuffle(X, group, shared_centres, shared_mean, shared_axes, directory)
        parts = [
            solve(
                *pieces,
                mean=shared_mean,
                axes=shared_axes,
                n_candidates=n_candidates,
                k=n_neighbors,
                reg=reg,
            )
            for pieces in shuffled
        ]
        results.extend(compute(*parts, label=f"neighbors {g + 1}/{n_groups}"))
    return results


def _shuffle(X: da.Array, group, centres, mean, axes, directory) -> list[list]:
    """For each partition in group, the (delayed) pieces of X's rows that join it."""
    assigned = row_block_tasks(
        _assign_rows,
        [X],
        centres=centres,
        group=group,
        mean=mean,
        axes=axes,
        directory=directory,
    )
    getitem = dask.delayed(_item, pure=True)
    return [[getitem(block, j) for block in assigned] for j in range(len(group))]


def partition_rows(n_features: int, dtype) -> int:
    """Rows per partition: at most PARTITION_BYTES of data, and within a task's memory budget
    with room for the largest k-means cluster (~1.5x the mean) held twice while it is gathered."""
    row_bytes = n_features * np.dtype(dtype).itemsize
    return min(PARTITION_BYTES // row_bytes, rows_within(4 * row_bytes + 1024))


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


def new_shuffle_directory() -> str | None:
    """A new scratch directory that every worker can read; None if there is none.

    Under the threaded and synchronous schedulers, and on a cluster whose workers all run on
    this host, it is a new directory under dask's ``temporary-directory`` (the system's temporary
    directory if unset).
    """
    if not _workers_on_this_host():
        return None
    base = dask.config.get("temporary-directory", None) or None
    return tempfile.mkdtemp(prefix="dasklle-shuffle-", dir=base)


def _remove(directory: str | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def shuffle_directory():
    """``new_shuffle_directory()``, removed afterwards."""
    directory = new_shuffle_directory()
    try:
        yield directory
    finally:
        _remove(directory)


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
    ids, points = _gather_pieces(pieces)
    m = len(ids)
    z = _project(points, mean, axes)
    K = min(n_candidates, m - 1)
    found_d, found = _fast_block_candidates(z, z, 0, K + 1)
    is_self = found == np.arange(m)[:, None]
    cand = np.take_along_axis(found, np.argsort(is_self, axis=1, kind="stable")[:, :K], 1)
    local = _rerank_block(points, points, cand, np.arange(m), row_offset=0, k=min(k, K))
    score, w = _local_fit(points, points, local, k, reg)
    return ids, _global_rows(ids, local, k), w, score


def _global_rows(ids: np.ndarray, local: np.ndarray, k: int) -> np.ndarray:
    """Partition-local neighbor positions as global rows, -1 where fewer than k were found."""
    rows = np.full((local.shape[0], k), -1, dtype=np.int64)
    rows[:, : local.shape[1]] = ids[local]
    return rows


def _local_fit(queries, points, local, k: int, reg: float | None, exact_match: bool = False):
    """Each query's total squared distance to its k neighbors ``points[local]`` (inf where it
    has fewer) and its barycentric weights (zeros without ``reg``)."""
    from ..local.weights import barycenter_weights, batch_rows

    m = queries.shape[0]
    score = np.full(m, np.inf)
    w = np.zeros((m, k))
    if local.shape[1] == k:
        step = batch_rows(k, points.shape[1])
        for start in range(0, m, step):
            r = slice(start, start + step)
            neighbors = points[local[r]]
            diff = neighbors.astype(np.float64) - queries[r, None, :]
            score[r] = np.einsum("ijd,ijd->i", diff, diff)
            if reg is not None:
                w[r] = barycenter_weights(queries[r], neighbors, reg, exact_match)
    return score, w


@dataclass
class PartitionIndex:
    """A fit's partitions, kept as files, to search new points the way the fit searched.

    ``members[p]`` are the training rows of partition p, ascending, stored in the files
    ``partition{p}-rows{offset}.npy`` of ``directory`` (one per source block). A new point joins
    its PARTITION_COPIES nearest partitions, is searched there with the same projection and
    rerank, and keeps its best copy: a query costs about what a point of the fit cost, with no
    scan of every training row. The directory is removed with the index.
    """

    mean: np.ndarray
    axes: np.ndarray
    centres: np.ndarray
    n_candidates: int
    directory: str
    row_chunks: tuple[int, ...]
    members: list[np.ndarray]

    def __post_init__(self):
        weakref.finalize(self, _remove, self.directory)

    def query(self, Y: da.Array, n_neighbors: int, reg: float, compute=None):
        """(indices, barycentric weights) of the rows of Y among the training points."""
        compute = compute or _default_compute
        n_parts = self.centres.shape[0]
        offsets = row_offsets(self.row_chunks)
        shared_mean, shared_axes, shared_centres = _shared(self.mean, self.axes, self.centres)
        search = dask.delayed(_partition_query, pure=True)
        with shuffle_directory() as directory:
            shuffled = _shuffle(
                Y, np.arange(n_parts), shared_centres, shared_mean, shared_axes, directory
            )
            parts = [
                search(
                    *shuffled[p],
                    train_rows=self.members[p],
                    train_files=[self._file(p, off) for off in offsets],
                    mean=shared_mean,
                    axes=shared_axes,
                    n_candidates=self.n_candidates,
                    k=n_neighbors,
                    reg=reg,
                )
                for p in range(n_parts)
            ]
            results = compute(*parts, label="neighbors of new points")
        return _best_copies(results, Y.shape[0], n_neighbors)

    def _file(self, part: int, offset: int) -> str:
        return os.path.join(self.directory, f"partition{part}-rows{offset}.npy")


def _partition_query(
    *pieces, train_rows, train_files, mean, axes, n_candidates: int, k: int, reg: float
):
    """(query rows, k neighbor rows, weights, total squared distance) of the new points that
    joined one partition, searched among its training points."""
    ids, queries = _gather_pieces(pieces)
    if len(ids) == 0:
        return ids, np.empty((0, k), np.int64), np.empty((0, k)), np.empty(0)
    points = np.concatenate([np.load(path, allow_pickle=False) for path in train_files])
    K = min(n_candidates, len(points))
    _, cand = _fast_block_candidates(
        _project(queries, mean, axes), _project(points, mean, axes), 0, K
    )
    local = _rerank_block(queries, points, cand, np.arange(len(points)), row_offset=0, k=min(k, K))
    score, w = _local_fit(queries, points, local, k, reg, exact_match=True)
    return ids, _global_rows(train_rows, local, k), w, score


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
    from ..local.weights import batch_rows

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
    from ..local.weights import gather_plan

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
        if self.algorithm == "partitioned":
            return {**self.__dict__, "algorithm": "brute", "index": self.points}
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
    return tree_query(index, block, n_neighbors)


def _exact_query(Y: da.Array, X: da.Array, n_neighbors: int) -> da.Array:
    Y, X = _in_search_blocks(Y), _in_search_blocks(X)
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
    dist, index = _smallest(dist, index.astype(np.int64), k + 1)
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
    algorithm = choose_algorithm(algorithm, *X.shape, n_neighbors)
    if algorithm == "brute":
        return exact_neighbors(X, n_neighbors), NeighborIndex("brute", X)
    if algorithm == "projected" and X.shape[0] > PROJECTED_BRUTE_MAX_ROWS:
        found, _, partitions = partitioned_graph(
            X, n_neighbors, reg=None, random_state=random_state, keep_index=True
        )
        return da.from_array(found, chunks=(X.chunks[0], -1)), partitioned_index(X, partitions)
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


def runs_partitioned(algorithm: str, n_samples: int) -> bool:
    """Whether the search for ``algorithm`` (as chosen) runs in partitions."""
    return algorithm == "projected" and n_samples > PROJECTED_BRUTE_MAX_ROWS
