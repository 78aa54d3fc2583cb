"""Opening the data: every accepted input becomes a row-chunked dask array, read lazily.

Files are never loaded into the client nor carried inside the task graph: each task holds a
small reader (a path, a dataset name, a row range) and reads its own rows when it runs.

============================  ==========================================================
input                         read
============================  ==========================================================
numpy array                   in memory already; with a distributed client, its row blocks
                              are scattered to the workers (not pickled into the graph)
``np.load(..., mmap_mode)``   a memory map of a .npy file: read per task, like the file
dask array                    as it is (its own graph)
zarr array or group           per planned block within one chunk (``dask.array.from_zarr``)
``file.npy``                  per task, through a memory map opened in the task
``file.h5:/dataset``          per task, through h5py (``.h5``, ``.hdf5``, ``.hdf``)
``file.h5ad[:key]``           AnnData: dense ``X``, or ``obsm`` entry ``key`` (``X_pca``)
``file.parquet`` or folder    numeric columns, one task per row group, through pyarrow
``file.csv``                  numeric columns, through ``dask.dataframe.read_csv``
============================  ==========================================================
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np

from ..exceptions import InputError
from .files import (
    HDF5_SUFFIXES,
    as_matrix_shape,
    check_stored_chunk,
    memmap_input,
    open_h5ad,
    open_hdf5,
    open_npy,
    working_itemsize,
)
from .tabular import TABULAR_SUFFIXES, is_parquet_folder, open_tabular

ACCEPTED = (
    "a numpy or dask array, a zarr array or group, a .npy file, HDF5 'file.h5:/dataset', "
    "AnnData 'file.h5ad' or 'file.h5ad:X_pca' (an obsm entry), Parquet (a .parquet file or "
    "folder) or CSV (.csv)"
)


def _split_key(source: str) -> tuple[str, str | None]:
    """'file.h5:/data' -> ('file.h5', '/data'); a path that exists as given is not split."""
    if os.path.exists(source) or ":" not in source:
        return source, None
    path, key = source.rsplit(":", 1)
    return path, key or None


def _zarr_array(path: str) -> Any:
    """A zarr array, or the array of a group (its 'X', or its only 2-D array)."""
    import zarr

    try:
        node = zarr.open(store=path, mode="r")
    except Exception as exc:  # zarr raises several types for a missing or broken store
        raise InputError(f"cannot open {path!r} as a zarr array ({exc}).") from exc
    return node if isinstance(node, zarr.Array) else _group_array(node)


def _open_zarr(source: Any) -> da.Array:
    """Tasks read planned blocks, each within one stored chunk (zarr decodes whole chunks)."""
    from ..tasks.memory import block_rows

    array = _zarr_array(source) if isinstance(source, str) else source
    where = str(source) if isinstance(source, str) else "the zarr array"
    shape = as_matrix_shape(where, array.shape)
    itemsize = working_itemsize(array.dtype)
    check_stored_chunk(where, array.chunks[0] * shape[1] * array.dtype.itemsize)
    rows = block_rows(*shape, itemsize, stored=array.chunks[0])
    return da.from_zarr(array, chunks=(rows, shape[1]))


def _is_zarr(path: str) -> bool:
    """A zarr store (v2 or v3 metadata) at path."""
    return any(
        os.path.exists(os.path.join(path, meta)) for meta in ("zarr.json", ".zarray", ".zgroup")
    )


def open_path(source: str | os.PathLike, columns: Sequence[str] | None = None) -> da.Array:
    """A lazy dask array over a file or store named by a path (see the module's table)."""
    source = os.fspath(source)
    path, key = _split_key(source)
    lower = path.lower()
    if not os.path.exists(path):
        raise InputError(f"{path!r} does not exist.")
    if columns and not lower.endswith(TABULAR_SUFFIXES) and not is_parquet_folder(path):
        raise InputError(f"columns select columns of Parquet or CSV inputs; {path!r} is neither.")
    if _is_zarr(path) or lower.endswith(".zarr"):
        refuse_dasklle_store(path)
        return _open_zarr(path if key is None else f"{path}/{key}")
    if lower.endswith(".npy"):
        return open_npy(path)
    if lower.endswith(".h5ad"):
        return open_h5ad(path, key)
    if lower.endswith(HDF5_SUFFIXES):
        return open_hdf5(path, key)
    if lower.endswith(TABULAR_SUFFIXES) or is_parquet_folder(path):
        return open_tabular(path, columns)
    raise InputError(f"{source!r} is not an input dasklle reads; it reads {ACCEPTED}.")


def _dasklle_store_holding(path: str) -> Any:
    """The dasklle store at path or holding it (an array inside one), or None."""
    import zarr

    from .store import is_dasklle_store

    while _is_zarr(path):
        try:
            node = zarr.open(store=path, mode="r")
        except Exception:  # unreadable metadata: not a store dasklle wrote
            return None
        if is_dasklle_store(node):
            return node
        path = os.path.dirname(os.path.normpath(path))
    return None


def refuse_dasklle_store(path: str, node: Any = None) -> None:
    """A store that dasklle wrote is output, not data: refuse it, naming its input if known."""
    from .store import is_dasklle_store

    node = _dasklle_store_holding(path) if node is None else node
    if not is_dasklle_store(node):
        return
    recorded = node.attrs.get("input")
    origin = f" of {recorded}" if recorded else ""
    raise InputError(
        f"{path!r} is a store written by dasklle (an embedding{origin}), not input data; "
        "give the data it was computed from."
    )


def _scatter_rows(X: np.ndarray, rows: int) -> da.Array | None:
    """With a distributed client, X's row blocks as data on the workers (``to_workers``: up to
    ``tasks.held-max-bytes``, a lost worker costs their recomputation, not the fit); else
    None."""
    import dask

    from ..tasks.blocks import to_workers
    from ..tasks.progress import distributed_client

    client = distributed_client()
    if client is None:
        return None

    starts = range(0, X.shape[0], rows)
    futures = to_workers(client, [X[s : s + rows] for s in starts])
    parts = [
        da.from_delayed(dask.delayed(f), shape=(len(X[s : s + rows]), X.shape[1]), dtype=X.dtype)
        for f, s in zip(futures, starts, strict=True)
    ]
    return da.concatenate(parts, axis=0)


def open_input(
    X: Any, *, columns: Sequence[str] | None = None, rows: int | None = None
) -> tuple[da.Array, str]:
    """Any accepted input as a dask array (rows as stored) and a short description of it.

    ``rows`` is the row-block size planned for in-memory inputs (their only chunking).
    """
    import zarr

    if isinstance(X, str | os.PathLike):
        return open_path(X, columns), os.fspath(X)
    if columns:
        raise InputError("columns select columns of Parquet or CSV files given by path.")
    if isinstance(X, zarr.Group):
        refuse_dasklle_store(str(X.store), X)
        return _open_zarr(_group_array(X)), "zarr group"
    if isinstance(X, zarr.Array):
        return _open_zarr(X), "zarr array"
    if isinstance(X, da.Array):
        return X, "dask array"
    if isinstance(X, np.memmap):
        mapped = memmap_input(X)
        if mapped is not None:
            return mapped, f"memory map of {X.filename}"
    X = np.asarray(X)
    if X.ndim == 2 and X.size:
        scattered = _scatter_rows(X, rows or X.shape[0])
        if scattered is not None:
            return scattered, "numpy array"
    return da.from_array(X, chunks=(rows or max(X.shape[0], 1),) + X.shape[1:]), "numpy array"


def _group_array(group) -> Any:
    """The array a zarr group holds for embedding: its 'X', or its only 2-D array."""
    arrays = dict(group.arrays())
    if "X" in arrays:
        return arrays["X"]
    two_d = [a for a in arrays.values() if a.ndim == 2]
    if len(two_d) == 1:
        return two_d[0]
    raise InputError(
        f"the zarr group does not hold an array called 'X' or a single 2-D array; it holds "
        f"{sorted(arrays)}."
    )
