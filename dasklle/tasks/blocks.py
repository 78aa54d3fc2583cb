"""The one helper that maps a function over aligned row blocks of dask arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask._task_spec import convert_legacy_graph
from dask.base import clone_key
from dask.core import flatten
from dask.delayed import Delayed
from dask.utils import ensure_dict

from .. import config
from .progress import compute, distributed_client


def row_offsets(row_chunks: Sequence[int]) -> np.ndarray:
    """Global index of the first row of every block."""
    return np.concatenate([[0], np.cumsum(row_chunks)[:-1]]).astype(np.int64)


def row_block_tasks(
    func: Callable[..., Any],
    arrays: Sequence[da.Array],
    *,
    per_block: Sequence[Sequence[Any]] | None = None,
    **kwargs: Any,
) -> list[Delayed]:
    """One delayed ``func(*blocks, *per_block[i], row_offset=..., **kwargs)`` per row block.

    All ``arrays`` are rechunked to the row chunks of the first one (and to a single chunk in
    their other dimensions), so block ``i`` of every array covers the same rows. ``per_block``
    holds extra arguments for each block (numpy arrays, dask arrays or delayed objects), which is
    what the stages need when a block reads rows that live in other blocks.

    The blocks keep the arrays' own, unoptimized graphs: whatever computes the tasks optimizes
    the whole graph once. (An optimized block wrapped back into a dask array would be fused a
    second time, under key names that differ from every other graph holding the same keys.)
    """
    row_chunks = arrays[0].chunks[0]
    offsets = row_offsets(row_chunks)
    blocks = []
    for array in arrays:
        single = {axis: -1 for axis in range(1, array.ndim)}
        aligned = array.rechunk({0: row_chunks, **single})
        blocks.append(aligned.to_delayed(optimize_graph=False).reshape(len(row_chunks)))
    task = dask.delayed(func, pure=True)
    extra = _on_workers(per_block) if per_block is not None else None
    return [
        task(
            *(b[i] for b in blocks),
            *(tuple(extra[i]) if extra is not None else ()),
            row_offset=int(offsets[i]),
            **kwargs,
        )
        for i in range(len(row_chunks))
    ]


def _on_workers(per_block: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """per_block with its numpy arrays sent to the workers once (futures, ``to_workers``),
    when a distributed client runs and they total ``tasks.scatter-min-bytes`` or more (dask
    warns of graphs above 10 MB); unchanged otherwise."""
    arrays = [a for args in per_block for a in args if isinstance(a, np.ndarray)]
    if sum(a.nbytes for a in arrays) < config.get_bytes("tasks.scatter-min-bytes"):
        return [list(args) for args in per_block]
    client = distributed_client()
    if client is None:  # the local schedulers share this process's memory
        return [list(args) for args in per_block]
    futures = iter(to_workers(client, arrays))
    return [[next(futures) if isinstance(a, np.ndarray) else a for a in args] for args in per_block]


def shared(*arrays: np.ndarray) -> list:
    """Each array as one key that tasks depend on, rather than a copy inside every task.

    A numpy argument is pickled into each task that uses it, and a worker holds the specs of
    every task queued on it, outside dask's memory accounting. As a key, an array travels to
    each worker once and counts as managed memory. On a distributed cluster the arrays go
    there by ``to_workers``.
    """
    client = distributed_client()
    if client is None:
        return [dask.delayed(a, pure=True) for a in arrays]
    return to_workers(client, list(arrays))


def to_workers(client, arrays: list[np.ndarray]) -> list:
    """Futures of the arrays on the client's workers, each under a key of its own.

    Where the arrays of one call come to at most ``tasks.held-max-bytes`` (the limit is per
    call: an in-memory input's blocks together, or one of the eigen stage's n-row vectors),
    each is the result of a task that holds it: the graphs sent later name the key rather than
    carry the array, and the scheduler, which keeps the task (a serialised copy), runs it
    again when the worker holding the result is lost.
    Beyond, they are scattered: one copy each, which the scheduler cannot recompute. (Copies
    scattered to every worker do not stay: the active memory manager drops the replicas no
    task waits for. Keys hashed from the content are no option either: an array scattered
    again just after an earlier copy was released reuses the key, and the workers drop the
    new copy on the old release.)
    """
    size = sum(a.nbytes for a in arrays)
    if size > config.get_bytes("tasks.held-max-bytes"):
        return client.scatter(arrays, hash=False)
    threshold = dask.utils.parse_bytes(
        dask.config.get("distributed.admin.large-graph-warning-threshold")
    )
    # sent once, on purpose: dask's warning of large graphs is about repetition
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": threshold + size}):
        return [client.submit(_held, a, pure=False) for a in arrays]


def _held(array: np.ndarray) -> np.ndarray:
    """The array a task holds (``to_workers``)."""
    return array


def map_row_blocks(
    func: Callable[..., np.ndarray],
    arrays: Sequence[da.Array],
    *,
    out_cols: int | None,
    dtype: Any,
    per_block: Sequence[Sequence[Any]] | None = None,
    **kwargs: Any,
) -> da.Array:
    """``row_block_tasks`` assembled into a lazy dask array with the same row chunks.

    The result has ``out_cols`` columns (1-D when ``out_cols`` is None).
    """
    tasks = row_block_tasks(func, arrays, per_block=per_block, **kwargs)
    parts = []
    for task, n_rows in zip(tasks, arrays[0].chunks[0], strict=True):
        shape = (n_rows,) if out_cols is None else (n_rows, out_cols)
        meta = np.empty((0,) * len(shape), dtype=dtype)
        parts.append(da.from_delayed(task, shape=shape, dtype=dtype, meta=meta))
    return da.concatenate(parts, axis=0)


def tree_reduce(parts: Sequence[Any], combine: Callable[..., Any], fan_in: int = 8) -> Any:
    """Combine delayed parts in a tree of ``combine(*group)`` tasks; returns one delayed."""
    task = dask.delayed(combine, pure=True)
    parts = list(parts)
    while len(parts) > 1:
        parts = [task(*parts[i : i + fan_in]) for i in range(0, len(parts), fan_in)]
    return parts[0]


def take_rows(X: da.Array, rows: np.ndarray) -> np.ndarray:
    """X[rows] as a numpy array, assembled in the client from per-chunk pieces.

    ``dask.compute(X[rows])`` would concatenate the pieces in one task on a worker, which must
    then hold the whole sample at once; here no task holds more than a chunk's share.
    """
    pieces = X[np.asarray(rows, dtype=np.int64)].to_delayed().ravel()
    return np.concatenate(compute(*pieces), axis=0)


def private_block(array: da.Array, seed: str) -> Delayed:
    """All of ``array`` as one Delayed block whose tasks share no key with ``array``.

    Persisting a result keeps every task of its lineage in the scheduler. Later graphs hold the
    same keys of the input, fused differently, and the scheduler would then see one key with two
    different tasks; renamed keys keep the lineage to itself. Keys already computed (persisted
    inputs) are referenced, not copied.
    """
    array = array.rechunk(-1)
    (key,) = flatten(array.__dask_keys__())
    graph = convert_legacy_graph(ensure_dict(array.__dask_graph__().cull({key})))
    names = {k: clone_key(k, seed) for k in graph}
    renamed = {names[k]: node.substitute(names, key=names[k]) for k, node in graph.items()}
    return Delayed(names[key], renamed)
