"""Each row's result from the partitions that hold it: the k nearest of its copies' lists
merged (with weights solved again where no copy found that list), or the best copy's.

Through the shuffle's files, the merge runs on the workers, a range of rows per task; through
memory, in this process."""

from __future__ import annotations

import os

import dask
import dask.array as da
import numpy as np

from ..local.weights import batch_limits, block_weights
from ..tasks.blocks import row_offsets, shared
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
    memory: there are no shuffle files to read them from)."""
    from ..local.weights import neighbor_weights

    if len(rows) == 0:
        return
    queries = X[rows].rechunk({0: _solve_rows(X, indices.shape[1]), 1: -1})
    solved = neighbor_weights(queries, indices[rows], reg=reg, points=X)
    (weights[rows],) = compute(solved, label="weights of merged neighbors")


def merged_from_files(
    X: da.Array, directory: str, members: list, k: int, reg, compute, resident: bool = False
):
    """(indices, weights or None) of each row: its copies' lists merged by ranges of rows, a
    task per range reading the partitions' result files (``result_file``) and solving again,
    from the shuffle's files, the weights that no copy held. The client holds no copy; with
    ``resident``, none of the result either (dask arrays of the tasks' results).

    ``members[p]`` are the ascending rows of partition p.
    """
    n = X.shape[0]
    copies = max(1, sum(map(len, members)) // max(n, 1))
    holder = np.empty(n, dtype=np.int32)  # a partition holding each row
    for p, rows in enumerate(members):
        holder[rows] = p
    step = rows_within(4 * copies * (8 + 24 * k))  # the copies' lists and their sort
    bounds = np.append(np.arange(0, n, step), n)
    starts = np.array([np.searchsorted(rows, bounds) for rows in members])
    (shared_holder,) = shared(holder)
    merge = dask.delayed(_merge_range, pure=True)
    offsets, limits, solve_rows = row_offsets(X.chunks[0]), batch_limits(), _solve_rows(X, k)
    tasks = [
        merge(
            directory,
            int(lo),
            int(hi),
            starts[:, r],
            starts[:, r + 1],
            shared_holder,
            offsets,
            k=k,
            reg=reg,
            limits=limits,
            solve_rows=solve_rows,
        )  # fmt: skip
        for r, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]
    if resident:
        return _on_workers(compute(*tasks, label="merged neighbors", keep=True), bounds, k, reg)
    parts = compute(*tasks, label="merged neighbors")
    indices = np.concatenate([part[0] for part in parts])
    weights = np.concatenate([part[1] for part in parts]) if reg is not None else None
    return indices, weights


def _on_workers(futures: list, bounds: np.ndarray, k: int, reg) -> tuple:
    """Dask arrays of the indices and weights (None without ``reg``) that the futures of
    (indices, weights) row ranges hold."""
    from ..tasks.progress import distributed_client

    client = distributed_client()

    def column(which: int, dtype) -> da.Array:
        parts = client.map(_item, futures, which=which, dtype=dtype)
        return da.concatenate(
            [
                da.from_delayed(part, shape=(int(hi - lo), k), dtype=dtype)
                for part, lo, hi in zip(parts, bounds[:-1], bounds[1:], strict=True)
            ]
        ).persist()

    return column(0, np.int64), (column(1, np.float64) if reg is not None else None)


def _item(pair: tuple, which: int, dtype) -> np.ndarray:
    return np.asarray(pair[which], dtype=dtype)


def result_file(directory: str, part: int, item: int) -> str:
    """The file of item (rows, neighbor rows, weights, squared distances) of a partition's
    result; each is sorted by row."""
    return os.path.join(directory, f"result{part}-{item}.npy")


def _merge_range(directory, lo, hi, firsts, lasts, holder, offsets, *, k, reg, limits, solve_rows):
    """(indices, weights or None) of rows lo..hi, merged from the partitions' results."""
    pieces = []
    for p, (a, b) in enumerate(zip(firsts, lasts, strict=True)):
        if b > a:
            ids, *rest = (
                np.load(result_file(directory, p, i), mmap_mode="r")[a:b] for i in range(4)
            )
            pieces.append((ids - lo, *rest))
    indices, weights, unsolved = merged_copies(pieces, hi - lo, k, reg is not None)
    del pieces
    for start in range(0, len(unsolved) if reg is not None else 0, solve_rows):
        queries = unsolved[start : start + solve_rows]
        needed, local = np.unique(
            np.concatenate([queries[:, None] + lo, indices[queries]], axis=1), return_inverse=True
        )
        points = _read_points(directory, len(firsts), holder[needed], offsets, needed)
        local = local.reshape(len(queries), k + 1)
        weights[queries] = block_weights(
            points[local[:, 0]], points, local[:, 1:], row_offset=0, reg=reg, exact_match=False,
            limits=limits,
        )  # fmt: skip
    return indices, weights


def _solve_rows(X: da.Array, k: int) -> int:
    """Rows whose weights are solved at a time: the points of their neighbors fit a quarter of
    the task budget."""
    return rows_within(4 * (k + 1) * X.shape[1] * np.dtype(X.dtype).itemsize)


def _read_points(directory: str, n_parts: int, holder, offsets, rows) -> np.ndarray:
    """The points of ``rows`` (ascending), each read from the shuffle's files of the partition
    ``holder`` names."""
    block = np.searchsorted(offsets, rows, side="right") - 1
    key = holder.astype(np.int64) * len(offsets) + block
    order = np.argsort(key, kind="stable")
    points = None
    for group in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        p, b = int(holder[group[0]]), int(block[group[0]])
        stored, data = read_partition(directory, int(offsets[b]), p, n_parts)
        if points is None:
            points = np.empty((len(rows), data.shape[1]), dtype=data.dtype)
        points[group] = data[np.searchsorted(stored, rows[group])]
    return points


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
