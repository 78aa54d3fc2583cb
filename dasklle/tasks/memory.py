"""How much memory one task may use, from the workers' memory limit rather than the input's chunks.

Every stage sizes its tasks from ``task_bytes()``: a share of what one worker thread may hold
(a worker's limit divided among its threads). The rest of the limit is the worker's own
footprint (its imports take ~200 MB), the results it keeps for other tasks, and dask's spill
and pause headroom (70% and 80% of the limit).
"""

from __future__ import annotations

import os

import dask

from .. import config

# A worker's imports take ~220 MB before any task, and dask pauses it at 80% of its limit:
# below this much a thread, the local cluster is refused rather than left paused and restarted.
MIN_THREAD_MEMORY = 512 * 2**20


def spill_fraction() -> float:
    """The share of its limit a worker fills before spilling to disk (dask's own setting)."""
    return float(dask.config.get("distributed.worker.memory.spill", None) or 0.7)


def _thread_memory_on_cluster() -> int | None:
    """The smallest memory limit per thread among the current client's workers, or None."""
    from .progress import distributed_client

    client = distributed_client()
    if client is None:  # the local schedulers run
        return None
    shares = [
        worker["memory_limit"] / max(1, worker["nthreads"])
        for worker in client.scheduler_info()["workers"].values()
        if worker.get("memory_limit")
    ]
    return int(min(shares)) if shares else None


def thread_memory() -> int:
    """Bytes one task's thread may count on: its worker's limit over its threads."""
    on_cluster = _thread_memory_on_cluster()
    if on_cluster is not None:
        return on_cluster
    import psutil

    threads = dask.config.get("num_workers", None) or os.cpu_count() or 1
    return int(psutil.virtual_memory().total // threads)


def task_bytes() -> int:
    """The memory one task of any stage may use."""
    # below the minimum a task's fixed costs dominate: workers under ~512 MB are not supported
    share = config.get("tasks.memory-fraction") * thread_memory()
    return max(config.get_bytes("tasks.min-task-bytes"), int(share))


def rows_within(bytes_per_row: float, budget: int | None = None, at_least: int = 1) -> int:
    """How many rows of ``bytes_per_row`` fit the task budget (at least ``at_least``)."""
    budget = task_bytes() if budget is None else budget
    return max(at_least, int(budget // max(bytes_per_row, 1.0)))


def default_chunk_rows(n_samples: int, n_features: int, itemsize: int) -> int:
    """Rows per block so that a block holds about ``tasks.block-bytes`` of input (large enough
    that dask's per-task overhead is negligible)."""
    rows = config.get_bytes("tasks.block-bytes") // max(1, n_features * itemsize)
    return int(min(max(rows, config.get("tasks.min-block-rows")), max(n_samples, 1)))


def block_rows(
    n_samples: int, n_features: int, itemsize: int, n_neighbors: int = 10, stored: int = 0
) -> int:
    """Rows per block: about ``tasks.block-bytes`` of input, and few enough that a block's
    neighbor rows (gathered by the weights stage, about 2 (k + 1) rows' worth) fit a task's
    memory budget; aligned with the ``stored`` chunking when there is one."""
    row_bytes = n_features * itemsize
    rows = min(
        default_chunk_rows(n_samples, n_features, itemsize),
        rows_within(2 * (n_neighbors + 1) * row_bytes, at_least=config.get("tasks.min-block-rows")),
    )
    if stored and stored > rows:  # split each stored chunk evenly: every read stays in one chunk
        rows = -(-stored // -(-stored // rows))
    elif stored:  # whole stored chunks per block
        rows = stored * (rows // stored)
    return int(min(rows, max(n_samples, 1)))
