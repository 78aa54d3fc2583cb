"""The shuffle of rows into partitions: each row's nearest partitions, the scratch directory
the pieces go through, and a partition's pieces gathered back into one array.

The shuffle goes through files when every worker can read this machine's files (the threaded
and synchronous schedulers, a local cluster): each source block is read once, its rows' copies
written to two files, and nothing in flight lives in memory; one key marks the shuffle done, so
the graph grows with the blocks, not with blocks x partitions (docs/design/neighbors.md).
Otherwise the pieces travel through dask's memory.
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

from ..tasks.blocks import row_block_tasks
from .exact import squared_distances
from .projected import project

PREFIX, OWNER = "dasklle-shuffle-", "owner"  # a scratch directory, and its file naming its process


def new_shuffle_directory() -> str | None:
    """A new scratch directory that every worker can read; None if there is none.

    Under the threaded and synchronous schedulers, and on a cluster whose workers all run on
    this host, it is a new directory under dask's ``temporary-directory`` (the system's temporary
    directory if unset).
    """
    if not _workers_on_this_host():
        return None
    base = dask.config.get("temporary-directory", None) or tempfile.gettempdir()
    _remove_orphans(base)
    directory = tempfile.mkdtemp(prefix=PREFIX, dir=base)
    with open(os.path.join(directory, OWNER), "w") as f:
        f.write(f"{socket.gethostname()} {os.getpid()}")
    return directory


def _remove_orphans(base: str) -> None:
    """Remove the scratch directories of processes of this host that no longer run.

    A process killed outright (out of memory, SIGKILL, a batch job's time limit) cannot remove
    its directory, which holds its input about three times over. Processes are told apart by
    host name and process id.
    """
    import psutil

    host = socket.gethostname()
    for name in os.listdir(base):
        try:
            with open(os.path.join(base, name, OWNER)) as f:
                owner_host, pid = f.read().split()
        except (OSError, ValueError):  # not a scratch directory, or another version's
            continue
        if name.startswith(PREFIX) and owner_host == host and not psutil.pid_exists(int(pid)):
            remove_directory(os.path.join(base, name))


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


def block_files(directory: str, row_offset: int) -> tuple[str, str]:
    """The files of the source block at ``row_offset``: its rows' copies ordered by partition,
    and their index (the partitions' bounds in it, then each copy's row within the block)."""
    return (
        os.path.join(directory, f"rows{row_offset}.npy"),
        os.path.join(directory, f"rows{row_offset}-index.npy"),
    )


def _block_share(directory: str, row_offset: int, part: int, n_parts: int):
    """(global rows, start, stop): the rows of the source block at ``row_offset`` that joined
    ``part``, and where their data lie in the block's data file."""
    index = np.load(block_files(directory, row_offset)[1], mmap_mode="r", allow_pickle=False)
    lo, hi = int(index[part]), int(index[part + 1])
    return np.asarray(index[n_parts + 1 + lo : n_parts + 1 + hi]) + row_offset, lo, hi


def _block_data(directory: str, row_offset: int) -> np.ndarray:
    """The data file of the source block at ``row_offset``, memory-mapped."""
    return np.load(block_files(directory, row_offset)[0], mmap_mode="r", allow_pickle=False)


def read_partition(directory: str, row_offset: int, part: int, n_parts: int):
    """(global rows, data memory-mapped) of the source block at ``row_offset`` that joined
    ``part``."""
    rows, lo, hi = _block_share(directory, row_offset, part, n_parts)
    return rows, _block_data(directory, row_offset)[lo:hi]


def read_partition_rows(directory: str, offsets, part: int, n_parts: int):
    """(global rows, data) of every source block's rows that joined ``part``, in row order.

    Each block's file is mapped only while its rows are copied: the mapped pages count in the
    worker's memory, and all of them at once would double the partition."""
    shares = [_block_share(directory, int(offset), part, n_parts) for offset in offsets]
    total = sum(len(rows) for rows, _, _ in shares)
    points, start = None, 0
    for offset, (rows, lo, hi) in zip(offsets, shares, strict=True):
        data = _block_data(directory, int(offset))
        if points is None:
            points = np.empty((total, data.shape[1]), dtype=data.dtype)
        points[start : start + len(rows)] = data[lo:hi]
        start += len(rows)
        del data
    return np.concatenate([rows for rows, _, _ in shares]), points


def write_whole(path: str, write) -> None:
    """``write(file)`` under a temporary name, then a rename: a retried task (a lost worker)
    replaces the file whole, and a reader never sees a partial one."""
    partial = f"{path}.{uuid.uuid4().hex}.partial"
    with open(partial, "wb") as f:
        write(f)
    os.replace(partial, path)


def _save(path: str, array: np.ndarray) -> None:
    write_whole(path, lambda f: np.save(f, array, allow_pickle=False))


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


def _assign_rows(block, *, row_offset: int, centres, group, mean, axes, copies, directory):
    """This block's rows joining each partition of group.

    With a directory, they go to the block's two files (``block_files``) and the task returns
    only how many joined each partition; without, it returns (global rows, data) per partition.
    """
    members = partition_members(project(block, mean, axes), centres, copies)
    if directory is None:
        return [(members[p] + row_offset, block[members[p]]) for p in group]
    local = np.concatenate([members[p] for p in group])
    bounds = np.concatenate([[0], np.cumsum([len(members[p]) for p in group])])
    data_path, index_path = block_files(directory, row_offset)
    _save(data_path, block[local])
    _save(index_path, np.concatenate([bounds, local]).astype(np.int64))  # last: marks it done
    return np.diff(bounds)


def _item(parts: list, p: int):
    """One partition's piece of a block's assignment (a task, so it travels alone)."""
    return parts[p]


def _written(*counts) -> int:
    """How many row copies the shuffle wrote: a single key that the partitions' tasks wait on,
    rather than one per (block, partition)."""
    return int(sum(int(c.sum()) for c in counts))


def shuffle_rows(X: da.Array, group, centres, mean, axes, copies: int, directory: str | None):
    """The shuffle of X's rows into the partitions of group.

    Every row joins its ``copies`` nearest ``centres`` among the projected points (``mean``
    and ``axes`` are shared graph keys or futures, as ``projected.shared`` makes them). With a
    directory: one delayed that completes once every block's files are written (read them
    with ``read_partition_rows``); without, for each partition, its delayed pieces.
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
    if directory is not None:
        return dask.delayed(_written, pure=True)(*assigned)
    getitem = dask.delayed(_item, pure=True)
    return [[getitem(block, j) for block in assigned] for j in range(len(group))]


def gather_pieces(pieces) -> tuple[np.ndarray, np.ndarray]:
    """(global rows, data) of a partition from its pieces."""
    ids = np.concatenate([p[0] for p in pieces])
    points = None
    start = 0
    for rows, data in pieces:
        if points is None:
            points = np.empty((len(ids), data.shape[1]), dtype=data.dtype)
        points[start : start + len(rows)] = data
        start += len(rows)
    return ids, points
