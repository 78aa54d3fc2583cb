"""Each row's result from the partitions that hold it: the k nearest of its copies' lists
merged (with weights solved again where no copy found that list), or the best copy's."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from ..local.weights import batch_limits
from ..tasks.blocks import row_offsets
from ..tasks.memory import rows_within
from .exact import smallest
from .shuffle import read_partition


def merged_copies(results: list, n_rows: int, k: int, with_weights: bool = True):
    """(indices, weights or None, rows whose weights are missing) of each row: the k nearest
    of the union of its copies' lists, ties by the lower row.

    A row's weights are those of a copy whose list is the merged one; the rows where no copy's
    list is (their neighbors come from several partitions) are returned to be solved again.
    """
    pieces = [tuple(np.asarray(a) for a in part) for part in results]
    ids = np.concatenate([p[0] for p in pieces])
    counts = np.bincount(ids, minlength=n_rows)
    copies = counts[0] if n_rows else 0
    if len(counts) != n_rows or np.any(counts != copies) or copies == 0:
        raise RuntimeError("partitioned neighbor search: a row is missing from its partitions")
    order = np.argsort(ids, kind="stable")
    del ids
    listed = np.concatenate([p[1] for p in pieces])[order].reshape(n_rows, copies, k)
    found = listed.reshape(n_rows, copies * k)
    dist = np.concatenate([p[3] for p in pieces])[order].reshape(n_rows, copies * k)
    # one entry per neighbor (its smallest distance), the duplicates pushed beyond the k-th
    by_row = np.lexsort((dist, found), axis=1)
    found = np.take_along_axis(found, by_row, 1)
    dist = np.take_along_axis(dist, by_row, 1)
    dist[:, 1:][found[:, 1:] == found[:, :-1]] = np.inf
    nearest_dist, indices = smallest(dist, found, k)
    if not np.all(np.isfinite(nearest_dist)):
        raise RuntimeError(
            "partitioned neighbor search: a point's partitions hold fewer than n_neighbors "
            "other points; use neighbors_algorithm='brute' or 'nndescent'."
        )
    if not with_weights:
        return indices, None, np.empty(0, dtype=np.int64)
    same = (listed == indices[:, None, :]).all(axis=2)
    del listed
    which = np.argmax(same, axis=1)
    weights = np.concatenate([p[2] for p in pieces])[order].reshape(n_rows, copies, k)
    weights = weights[np.arange(n_rows), which]
    return indices, weights, np.flatnonzero(~same.any(axis=1))


def weights_from_source(
    X: da.Array, indices: np.ndarray, weights: np.ndarray, rows: np.ndarray, reg: float, compute
) -> None:
    """Solve, in place, the weights of ``rows`` from their neighbors ``indices[rows]``, read
    from X in blocks whose gathered neighbors fit a task's budget (the shuffle went through
    memory: there are no partition files to read them from)."""
    from ..local.weights import neighbor_weights

    if len(rows) == 0:
        return
    queries = X[rows].rechunk({0: _solve_rows(X, indices.shape[1]), 1: -1})
    solved = neighbor_weights(queries, indices[rows], reg=reg, points=X)
    (weights[rows],) = compute(solved, label="weights of merged neighbors")


def weights_from_files(
    X: da.Array,
    stored,
    indices: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    reg: float,
    compute,
) -> None:
    """Solve, in place, the weights of ``rows`` from their neighbors ``indices[rows]``, each
    point read (memory-mapped) from the shuffle's files of a partition holding it.

    ``stored`` is (directory, members): the shuffle's directory and the ascending rows of each
    partition of X. One task per block of rows whose points fit a task's budget; it reads only
    those points.
    """
    if len(rows) == 0:
        return
    directory, members = stored
    holder = np.empty(len(indices), dtype=np.int64)  # a partition holding each row
    for p, m in enumerate(members):
        holder[m] = p
    offsets = row_offsets(X.chunks[0])
    k = indices.shape[1]
    step = _solve_rows(X, k)
    solve = dask.delayed(_weights_from_files, pure=True)
    limits = batch_limits()
    tasks = []
    for start in range(0, len(rows), step):
        queries = rows[start : start + step]
        needed, local = np.unique(
            np.concatenate([queries[:, None], indices[queries]], axis=1), return_inverse=True
        )
        sources = _file_positions(directory, members, holder[needed], offsets, needed)
        tasks.append(
            solve(sources, len(needed), local.reshape(len(queries), k + 1), reg=reg, limits=limits)
        )
    solved = compute(*tasks, label="weights of merged neighbors")
    weights[rows] = np.concatenate(solved)


def _solve_rows(X: da.Array, k: int) -> int:
    """Rows per task of solved weights: the points of their neighbors fit a quarter of the
    task budget."""
    return rows_within(4 * (k + 1) * X.shape[1] * np.dtype(X.dtype).itemsize)


def _file_positions(directory, members, holder, offsets, rows) -> list:
    """(``read_partition``'s arguments, positions in what it reads, positions in ``rows``) of
    each (block, partition) to read ``rows`` from, ``holder[i]`` the partition of ``rows[i]``."""
    block = np.searchsorted(offsets, rows, side="right") - 1
    key = holder * len(offsets) + block
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    sources = []
    for group in np.split(order, bounds):
        p, b = holder[group[0]], block[group[0]]
        first = np.searchsorted(members[p], offsets[b])
        positions = np.searchsorted(members[p], rows[group]) - first
        sources.append(((directory, int(offsets[b]), int(p), len(members)), positions, group))
    return sources


def _weights_from_files(sources, n_points: int, local: np.ndarray, *, reg: float, limits):
    """Weights of rows ``points[local[:, 0]]`` from neighbors ``points[local[:, 1:]]``, the
    points read from the shuffle's files ``sources`` lists."""
    from ..local.weights import block_weights

    points = None
    for where, positions, dest in sources:
        _, data = read_partition(*where)
        if points is None:
            points = np.empty((n_points, data.shape[1]), dtype=data.dtype)
        points[dest] = data[positions]
    queries = points[local[:, 0]]
    return block_weights(
        queries, points, local[:, 1:], row_offset=0, reg=reg, exact_match=False, limits=limits
    )


def best_copies(results: list, n_rows: int, k: int, with_weights: bool = True):
    """(indices, weights or None) of each row from the partition copy where its neighbors are
    nearest."""
    pieces = [tuple(np.asarray(a) for a in part) for part in results]
    indices = _best_copy(pieces, n_rows, k, column=1)
    if not with_weights:
        return indices, None
    return indices, _best_copy(pieces, n_rows, k, column=2)


def _best_copy(pieces: list, n_rows: int, k: int, column: int) -> np.ndarray:
    """Per row, the list from the partition where its k neighbors are nearest in total."""
    ids = np.concatenate([p[0] for p in pieces])
    values = np.concatenate([p[column] for p in pieces])
    score = np.concatenate([p[3].sum(axis=1) for p in pieces])
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
