"""How much memory one task may use, from the workers' memory limit rather than the input's chunks.

Every stage sizes its tasks from ``task_bytes()``: a share of what one worker thread may hold
(a worker's limit divided among its threads). The rest of the limit is the worker's own
footprint (its imports take ~200 MB), the results it keeps for other tasks, and dask's spill
and pause headroom (70% and 80% of the limit).
"""

from __future__ import annotations

import os

import dask

# Target bytes of input per row block: large enough that dask's per-task overhead (~1 ms) is
# negligible; the memory budget below may make blocks smaller.
TARGET_BLOCK_BYTES = 16 * 2**20
MIN_BLOCK_ROWS = 256
# A task may use this share of its thread's part of the worker's memory limit.
TASK_MEMORY_FRACTION = 0.25
# dask's default spill threshold: memory a worker can fill before it starts writing to disk.
SPILL_FRACTION = 0.7
# Below this a task's fixed costs dominate; workers smaller than ~512 MB are not supported.
MIN_TASK_BYTES = 32 * 2**20


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
    return max(MIN_TASK_BYTES, int(TASK_MEMORY_FRACTION * thread_memory()))


def rows_within(bytes_per_row: float, budget: int | None = None, at_least: int = 1) -> int:
    """How many rows of ``bytes_per_row`` fit the task budget (at least ``at_least``)."""
    budget = task_bytes() if budget is None else budget
    return max(at_least, int(budget // max(bytes_per_row, 1.0)))


def default_chunk_rows(n_samples: int, n_features: int, itemsize: int) -> int:
    """Rows per block so that a block holds about TARGET_BLOCK_BYTES of input."""
    rows = TARGET_BLOCK_BYTES // max(1, n_features * itemsize)
    return int(min(max(rows, MIN_BLOCK_ROWS), max(n_samples, 1)))


def block_rows(
    n_samples: int, n_features: int, itemsize: int, n_neighbors: int = 10, stored: int = 0
) -> int:
    """Rows per block: about TARGET_BLOCK_BYTES of input, and few enough that a block's
    neighbor rows (gathered by the weights stage, about 2 (k + 1) rows' worth) fit a task's
    memory budget; aligned with the ``stored`` chunking when there is one."""
    row_bytes = n_features * itemsize
    rows = min(
        default_chunk_rows(n_samples, n_features, itemsize),
        rows_within(2 * (n_neighbors + 1) * row_bytes, at_least=MIN_BLOCK_ROWS),
    )
    if stored and stored > rows:  # split each stored chunk evenly: every read stays in one chunk
        rows = -(-stored // -(-stored // rows))
    elif stored:  # whole stored chunks per block
        rows = stored * (rows // stored)
    return int(min(rows, max(n_samples, 1)))
