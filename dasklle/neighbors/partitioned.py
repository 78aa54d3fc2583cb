"""The partitioned search: neighbors (and weights) solved inside partitions of the rows.

The rows are split into partitions by k-means on a projected sample; every point joins its
``neighbors.partition-copies`` nearest partitions (``shuffle.py``); one task per partition
projects its rows, finds candidates among them, reranks them by true distance and solves the
weights with rows it already holds; each point keeps the k nearest of its partitions' lists
merged, its weights solved again where no single partition held them all. No task holds more
than a partition. ``PartitionIndex`` keeps the partitions to search new points, each keeping
its best partition's list. See docs/design/neighbors.md.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np

from .. import config
from ..local.weights import batch_limits
from ..tasks import progress
from ..tasks.blocks import row_offsets, shared
from ..tasks.memory import rows_within
from .copies import (
    best_copies,
    merged_copies,
    merged_from_files,
    result_file,
    weights_from_source,
)
from .exact import rerank_block
from .projected import candidates_count, fast_block_candidates, principal_axes, project
from .shuffle import (
    gather_pieces,
    new_shuffle_directory,
    read_partition_rows,
    remove_directory,
    shuffle_directory,
    shuffle_rows,
    write_whole,
)


def partitioned_graph(
    X: da.Array,
    n_neighbors: int,
    *,
    reg: float | None,
    random_state: int = 0,
    compute=None,
    keep_index: bool = False,
    resident: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, PartitionIndex | None]:
    """Neighbors (and, given ``reg``, barycentric weights) computed inside partitions.

    The input rows are shuffled once into partitions that keep each point with its likely
    neighbors. Every source chunk is read once; one task per partition finds 2k candidates in
    the projection, reranks them by true distance and solves the weights with rows it already
    holds: no random-access gather of neighbor vectors. Each row keeps the k nearest of its
    copies' lists merged; the weights of rows whose merged list no copy found are solved from
    their points read back from the shuffle's files (from X when the shuffle went through
    memory).

    Parameters
    ----------
    X : dask array (n_samples, n_features)
    n_neighbors : neighbors per row, excluding the row itself
    reg : regularisation of the barycentric weights; None computes no weights
    random_state : seed of the k-means that places the partitions
    compute : ``compute(*delayed, label=..., keep=False)`` that runs the tasks, their futures
        left on the workers with ``keep`` (default: dasklle's ``progress.run``)
    keep_index : keep the partitions (when the shuffle went through files) to search new points
    resident : return the rows as dask arrays held on the workers (when the shuffle went
        through files), not as numpy arrays

    Returns
    -------
    indices : (n_samples, n_neighbors) int64
    weights : (n_samples, n_neighbors) float64, or None without ``reg``
    index : PartitionIndex, or None unless kept
    """
    compute = compute or progress.run
    n_candidates = min(candidates_count(n_neighbors), X.shape[0] - 1)
    copies = config.get("neighbors.partition-copies")
    mean, axes = principal_axes(X, min(config.get("neighbors.projected-dim"), X.shape[1]))
    n_parts = max(2, int(np.ceil(copies * X.shape[0] / partition_rows(X, n_candidates))))
    centres = _centres(X, mean, axes, n_parts, random_state)
    directory = new_shuffle_directory()
    with_weights = reg is not None
    try:
        results = _solve_partitions(
            X, (mean, axes, centres, copies), directory, n_candidates, n_neighbors, reg, compute
        )
        if directory is not None:  # results are files; each task returned its rows
            indices, weights = merged_from_files(
                X, directory, results, n_neighbors, reg, compute, resident
            )
        else:
            indices, weights, unsolved = merged_copies(
                results, X.shape[0], n_neighbors, with_weights
            )
            del results
            if with_weights:
                weights_from_source(X, indices, weights, unsolved, reg, compute)
    except BaseException:
        remove_directory(directory)
        raise
    index = None
    if keep_index and directory is not None:
        index = PartitionIndex(mean, axes, centres, copies, n_candidates, directory, X.chunks[0])
    else:
        remove_directory(directory)
    return indices, weights, index


def partition_rows(X: da.Array, n_candidates: int) -> int:
    """Rows per partition: at most ``neighbors.partition-rows`` and ``neighbors.partition-bytes``
    of data, within a task's memory budget with room for the largest k-means cluster (~1.5x the
    mean) held twice while it is gathered, and at least 4 x the candidates."""
    row_bytes = X.shape[1] * np.dtype(X.dtype).itemsize
    by_bytes = config.get_bytes("neighbors.partition-bytes") // row_bytes
    within = min(by_bytes, rows_within(4 * row_bytes + 1024))
    return max(4 * n_candidates, min(config.get("neighbors.partition-rows"), within))


def _centres(X: da.Array, mean, axes, n_parts: int, random_state: int) -> np.ndarray:
    """k-means centres of n_parts partitions, from a projected sample of evenly spaced rows.

    Each chunk projects its sample rows; one task clusters them and returns only the centres.
    """
    n = X.shape[0]
    per_part = config.get("neighbors.partition-sample-per-part")
    by_bytes = config.get_bytes("neighbors.sample-bytes") // (4 * X.shape[1])
    n_sample = min(n, n_parts * per_part, by_bytes)
    rows = np.unique(np.linspace(0, n - 1, max(n_sample, n_parts)).astype(np.int64))
    sample = X[rows]
    projected = sample.map_blocks(
        project, *shared(mean, axes), dtype=np.float32, chunks=(sample.chunks[0], axes.shape[1:])
    )
    pieces = projected.to_delayed().ravel().tolist()
    iterations = config.get("neighbors.partition-kmeans-iterations")
    clustered = dask.delayed(_kmeans_centres, pure=True)(pieces, n_parts, iterations, random_state)
    (centres,) = progress.compute(clustered, label="partition centres")
    return centres


def _kmeans_centres(pieces: list, n_parts: int, iterations: int, random_state: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=n_parts, n_init=1, max_iter=iterations, random_state=random_state)
    return kmeans.fit(np.concatenate(pieces, axis=0)).cluster_centers_.astype(np.float32)


def _solve_partitions(X, placement, directory, n_candidates, n_neighbors, reg, compute):
    """Shuffle X's rows into the partitions and solve each; one result per partition.

    ``placement`` is (mean, axes, centres, copies). Through a scratch directory, each
    partition's task reads its rows from the shuffle's files and writes its result there.
    Without one the shuffle goes through memory, a group of partitions at a time,
    ``neighbors.partition-group-bytes`` of rows in flight.
    """
    mean, axes, centres, copies = placement
    n_parts = centres.shape[0]
    shared_mean, shared_axes, shared_centres = shared(mean, axes, centres)
    options = dict(
        mean=shared_mean, axes=shared_axes, n_candidates=n_candidates, k=n_neighbors, reg=reg,
        limits=batch_limits(),
    )  # fmt: skip
    if directory is not None:
        written = shuffle_rows(
            X, np.arange(n_parts), shared_centres, shared_mean, shared_axes, copies, directory
        )
        solve = dask.delayed(_partition_graph_from_files, pure=True)
        offsets = row_offsets(X.chunks[0])
        parts = [solve(written, directory, offsets, p, n_parts, **options) for p in range(n_parts)]
        return list(compute(*parts, label="neighbors"))
    in_flight = copies * X.nbytes  # each row travels to `copies` partitions
    group_bytes = config.get_bytes("neighbors.partition-group-bytes")
    n_groups = min(n_parts, max(1, int(np.ceil(in_flight / group_bytes))))
    solve = dask.delayed(_partition_graph, pure=True)
    results = []
    for g, group in enumerate(np.array_split(np.arange(n_parts), n_groups)):
        shuffled = shuffle_rows(X, group, shared_centres, shared_mean, shared_axes, copies, None)
        parts = [solve(*pieces, **options) for pieces in shuffled]
        results.extend(compute(*parts, label=f"neighbors {g + 1}/{n_groups}"))
    return results


def _partition_graph(*pieces, mean, axes, n_candidates: int, k: int, reg: float | None, limits):
    """(rows, k neighbor rows, weights, squared distances) within one partition."""
    ids, points = gather_pieces(pieces)
    return _solve_partition(ids, points, mean, axes, n_candidates, k, reg, limits)


def _partition_graph_from_files(_written, directory, offsets, part, n_parts, **options):
    """``_partition_graph`` of a partition read from the shuffle's files, its result written
    beside them (``copies.result_file``); returns the partition's rows. The workers hold no
    result while the other partitions run."""
    ids, points = read_partition_rows(directory, offsets, part, n_parts)
    result = _solve_partition(ids, points, **options)
    for item, array in enumerate(result):
        write_whole(result_file(directory, part, item), lambda f, a=array: np.save(f, a))
    return ids


def _solve_partition(ids, points, mean, axes, n_candidates: int, k: int, reg, limits):
    """(rows, k neighbor rows, weights, squared distances) of the partition's rows ``ids``."""
    m = len(ids)
    z = project(points, mean, axes)
    K = min(n_candidates, m - 1)
    found_d, found = fast_block_candidates(z, z, 0, K + 1)
    is_self = found == np.arange(m)[:, None]
    cand = np.take_along_axis(found, np.argsort(is_self, axis=1, kind="stable")[:, :K], 1)
    local = rerank_block(
        points, points, cand, np.arange(m), row_offset=0, k=min(k, K), limits=limits
    )
    rows, dist, w = _local_fit(points, points, local, ids, k, reg, limits)
    return ids, rows, w, dist


def _partition_query(
    _written, where, *pieces, train, mean, axes, n_candidates: int, k: int, reg: float, limits
):
    """(query rows, k neighbor rows, weights, squared distances) of the new points that
    joined one partition, searched among its training points; the new points are read from
    the shuffle's files (``where``: directory, offsets, partition, partitions) or ``pieces``."""
    ids, queries = read_partition_rows(*where) if where else gather_pieces(pieces)
    if len(ids) == 0:
        return ids, np.empty((0, k), np.int64), np.empty((0, k)), np.empty((0, k))
    train_rows, points = read_partition_rows(*train)
    K = min(n_candidates, len(points))
    _, cand = fast_block_candidates(project(queries, mean, axes), project(points, mean, axes), 0, K)
    everyone = np.arange(len(points))
    local = rerank_block(queries, points, cand, everyone, row_offset=0, k=min(k, K), limits=limits)
    rows, dist, w = _local_fit(queries, points, local, train_rows, k, reg, limits, exact_match=True)
    return ids, rows, w, dist


def _local_fit(queries, points, local, ids, k: int, reg, limits, exact_match: bool = False):
    """Each query's k neighbors ``points[local]`` as rows ``ids[local]``, sorted by their squared
    distance in float64 (ties by the lower row), those distances (inf where a query has fewer
    than k) and the barycentric weights (zeros without ``reg``)."""
    from ..local.weights import batch_rows, gram_weights

    m = queries.shape[0]
    rows = np.full((m, k), -1, dtype=np.int64)
    dist = np.full((m, k), np.inf)
    w = np.zeros((m, k))
    if local.shape[1] == k:
        step = batch_rows(k, points.shape[1], limits)
        for start in range(0, m, step):
            r = slice(start, start + step)
            C = points[local[r]].astype(np.float64)
            C -= queries[r, None, :]
            G = C @ C.transpose(0, 2, 1)  # one float64 copy of the neighbors per batch
            del C
            d = np.diagonal(G, axis1=1, axis2=2)
            order = np.lexsort((ids[local[r]], d), axis=1)
            local[r] = np.take_along_axis(local[r], order, 1)
            dist[r] = np.take_along_axis(d, order, 1)
            if reg is not None:
                G = G[np.arange(len(order))[:, None, None], order[:, :, None], order[:, None, :]]
                w[r] = gram_weights(G, reg)
                if exact_match:  # a new point equal to a training point lands on its image
                    same = dist[r][:, 0] == 0
                    w[r][same] = np.eye(k)[0]
        rows[:] = ids[local]
    elif local.shape[1]:
        rows[:, : local.shape[1]] = ids[local]
    return rows, dist, w


@dataclass
class PartitionIndex:
    """A fit's partitions, kept as files, to search new points the way the fit searched.

    The training rows of each partition are in the shuffle's files in ``directory`` (two per
    source block, ``shuffle.block_files``), with their row numbers. A new point joins
    its ``copies`` nearest partitions, is searched there with the same projection and rerank,
    and keeps its best copy: a query costs about what a point of the fit cost, with no scan of
    every training row. The directory is removed with the index.
    """

    mean: np.ndarray
    axes: np.ndarray
    centres: np.ndarray
    copies: int
    n_candidates: int
    directory: str
    row_chunks: tuple[int, ...]

    def __post_init__(self):
        weakref.finalize(self, remove_directory, self.directory)

    def query(self, Y: da.Array, n_neighbors: int, reg: float | None, compute=None):
        """(indices, barycentric weights) of the rows of Y among the training points."""
        compute = compute or progress.run
        n_parts = self.centres.shape[0]
        offsets = row_offsets(self.row_chunks)
        shared_mean, shared_axes, shared_centres = shared(self.mean, self.axes, self.centres)
        search = dask.delayed(_partition_query, pure=True)
        limits = batch_limits()
        with shuffle_directory() as directory:
            shuffled = shuffle_rows(
                Y, np.arange(n_parts), shared_centres, shared_mean, shared_axes, self.copies,
                directory,
            )  # fmt: skip
            query_offsets = row_offsets(Y.chunks[0])
            parts = [
                search(
                    *(
                        (shuffled, (directory, query_offsets, p, n_parts))
                        if directory
                        else (None, None, *shuffled[p])
                    ),
                    train=(self.directory, offsets, p, n_parts),
                    mean=shared_mean,
                    axes=shared_axes,
                    n_candidates=self.n_candidates,
                    k=n_neighbors,
                    reg=reg,
                    limits=limits,
                )  # fmt: skip
                for p in range(n_parts)
            ]
            results = compute(*parts, label="neighbors of new points")
        return best_copies(results, Y.shape[0], n_neighbors)
