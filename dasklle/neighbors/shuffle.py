"""The shuffle of rows into partitions: each row's nearest partitions, the scratch directory
the pieces go through, and a partition's pieces gathered back into one array.

The shuffle goes through files when every worker can read this machine's files (the threaded
and synchronous schedulers, a local cluster): each source block is read once and nothing in
flight lives in memory. Otherwise the pieces travel through dask's memory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import uuid

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed

from ..tasks.blocks import row_block_tasks
from .exact import squared_distances
from .projected import project


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


def remove_directory(directory: str | None) -> None:
    """Remove a scratch directory and its files, if there is one."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def shuffle_directory():
    """``new_shuffle_directory()``, removed afterwards."""
    directory = new_shuffle_directory()
    try:
        yield directory
    finally:
        remove_directory(directory)


def _workers_on_this_host() -> bool:
    """Whether every worker shares this machine's files (no distributed client, or all local)."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):  # no distributed client: this process computes
        return True
    return set(client.run(socket.gethostname).values()) <= {socket.gethostname()}


def partition_file(directory: str, part: int, row_offset: int) -> str:
    """The file holding the rows of the source block at ``row_offset`` that joined ``part``."""
    return os.path.join(directory, f"partition{part}-rows{row_offset}.npy")


def partition_members(z: np.ndarray, centres: np.ndarray, copies: int) -> list[np.ndarray]:
    """For each partition: the (ascending) rows of projected points z that join it, the
    ``copies`` nearest centres of each row.

    Distances by one matrix product and members by one sort, linear in the rows (see
    docs/design/neighbors.md).
    """
    d2 = squared_distances(z, centres)
    copies = min(copies, centres.shape[0])
    flat = np.argpartition(d2, copies - 1, axis=1)[:, :copies].ravel()
    order = np.argsort(flat, kind="stable")  # stable: rows ascending within each partition
    bounds = np.searchsorted(flat[order], np.arange(centres.shape[0] + 1))
    rows = order // copies
    return [rows[bounds[p] : bounds[p + 1]] for p in range(centres.shape[0])]


def _assign_rows(block, *, row_offset: int, centres, group, mean, axes, copies, directory) -> list:
    """For each partition in group: (global rows, their data) of this block's rows joining it.

    With a directory, the data goes to a file there and its path stands in for it. The file is
    written under a temporary name and renamed, so a task that is retried (a lost worker)
    overwrites it whole and a reader never sees a partial one.
    """
    members = partition_members(project(block, mean, axes), centres, copies)
    pieces = []
    for p in group:
        data = block[members[p]]
        rows = members[p] + row_offset
        if directory is not None:
            path = partition_file(directory, p, row_offset)
            partial = f"{path}.{uuid.uuid4().hex}.partial"
            with open(partial, "wb") as f:
                np.save(f, data, allow_pickle=False)
            os.replace(partial, path)
            data = path
        pieces.append((rows, data))
    return pieces


def _item(parts: list, p: int):
    """One partition's piece of a block's assignment (a task, so it travels alone)."""
    return parts[p]


def shuffle_rows(
    X: da.Array, group, centres, mean, axes, copies: int, directory: str | None
) -> list[list[Delayed]]:
    """For each partition in group, the (delayed) pieces of X's rows that join it.

    Every row joins its ``copies`` nearest ``centres`` among the projected points (``mean``
    and ``axes`` are shared graph keys or futures, as ``projected.shared`` makes them).
    """
    assigned = row_block_tasks(
        _assign_rows,
        [X],
        centres=centres,
        group=group,
        mean=mean,
        axes=axes,
        copies=copies,
        directory=directory,
    )
    getitem = dask.delayed(_item, pure=True)
    return [[getitem(block, j) for block in assigned] for j in range(len(group))]


def gather_pieces(pieces) -> tuple[np.ndarray, np.ndarray]:
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
