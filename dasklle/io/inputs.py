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

import functools
import logging
import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from ..exceptions import InputError

logger = logging.getLogger("dasklle")

ACCEPTED = (
    "a numpy or dask array, a zarr array or group, a .npy file, HDF5 'file.h5:/dataset', "
    "AnnData 'file.h5ad' or 'file.h5ad:X_pca' (an obsm entry), Parquet (a .parquet file or "
    "folder) or CSV (.csv)"
)
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
TABULAR_SUFFIXES = (".parquet", ".pq", *CSV_SUFFIXES)


# --- readers: tiny picklable objects that dask.array.from_array slices inside each task -------


@dataclass(frozen=True)
class _FileRows:
    """Rows of a 2-D array stored in a file; subclasses say how one slice is read."""

    path: str
    key: str
    shape: tuple[int, int]
    dtype: np.dtype
    stamp: tuple[int, int]  # (mtime_ns, size): a rewritten file gets new task keys

    @property
    def ndim(self) -> int:
        return 2

    def __dask_tokenize__(self):
        return (type(self).__name__, self.path, self.key, self.shape, str(self.dtype), self.stamp)


class _NpyRows(_FileRows):
    """A .npy file (or a raw memory-mapped array: ``key`` holds offset and order)."""

    def __getitem__(self, index):
        offset, order = self.key.split(":")
        array = np.memmap(
            self.path, dtype=self.dtype, mode="r", offset=int(offset), shape=self.shape, order=order
        )
        return np.array(array[index])


class _HDF5Rows(_FileRows):
    """A dataset of an HDF5 file, the file opened in each task (h5py handles do not pickle)."""

    def __getitem__(self, index):
        import h5py

        with h5py.File(self.path, "r") as f:
            return f[self.key][index]


def _stamp(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return (status.st_mtime_ns, status.st_size)


def _from_reader(reader: _FileRows, kind: str, stored: int = 0) -> da.Array:
    """The reader as a dask array; a task reads one planned block (aligned with ``stored``)."""
    from dask.base import tokenize

    from ..tasks.memory import block_rows

    rows = block_rows(*reader.shape, _working_itemsize(reader.dtype), stored=stored)
    return da.from_array(
        reader,
        chunks=(rows, reader.shape[1]),
        asarray=True,
        lock=False,
        fancy=False,
        name=f"read-{kind}-{tokenize(reader)}",
        meta=np.empty((0, 0), dtype=reader.dtype),
    )


# --- formats -----------------------------------------------------------------------------------


def _split_key(source: str) -> tuple[str, str | None]:
    """'file.h5:/data' -> ('file.h5', '/data'); a path that exists as given is not split."""
    if os.path.exists(source) or ":" not in source:
        return source, None
    path, key = source.rsplit(":", 1)
    return path, key or None


def _open_npy(path: str) -> da.Array:
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            header = read_header(f)
        except ValueError as exc:
            raise InputError(f"{path!r} is not a valid .npy file ({exc}).") from exc
        offset = f.tell()
    shape, fortran, dtype = header
    if dtype.hasobject:
        raise InputError(f"{path!r} holds Python objects; a .npy input must hold numbers.")
    shape = _as_matrix_shape(path, shape)
    order = "F" if fortran else "C"
    reader = _NpyRows(path, f"{offset}:{order}", shape, np.dtype(dtype), _stamp(path))
    return _from_reader(reader, "npy")


def _as_matrix_shape(where: str, shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) != 2:
        raise InputError(
            f"{where!r} must hold a 2-D array (n_samples, n_features); its shape is {tuple(shape)}."
        )
    return int(shape[0]), int(shape[1])


def _memmap_input(X: np.memmap) -> da.Array | None:
    """A memory map of a whole file, read per task from the file; None for views of one."""
    if not isinstance(X.base, mmap.mmap) or X.ndim != 2 or not X.filename:
        return None
    if X.flags.c_contiguous:
        order = "C"
    elif X.flags.f_contiguous:
        order = "F"
    else:
        return None
    path = os.fspath(X.filename)
    reader = _NpyRows(path, f"{X.offset}:{order}", X.shape, X.dtype, _stamp(path))
    return _from_reader(reader, "npy")


def _hdf5_datasets(f) -> list[str]:
    import h5py

    found = []
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return found


def _open_hdf5(path: str, key: str | None) -> da.Array:
    import h5py

    with h5py.File(path, "r") as f:
        if key is None:
            two_d = [name for name in _hdf5_datasets(f) if f[name].ndim == 2]
            if len(two_d) != 1:
                raise InputError(
                    f"{path!r}: name the dataset, as '{path}:/dataset'; 2-D datasets in the file: "
                    f"{two_d or 'none'}."
                )
            key = two_d[0]
        if key not in f or not isinstance(f[key], h5py.Dataset):
            raise InputError(
                f"{path!r} has no dataset {key!r}; datasets in the file: {_hdf5_datasets(f)}."
            )
        dataset = f[key]
        shape = _as_matrix_shape(f"{path}:{key}", dataset.shape)
        reader = _HDF5Rows(path, key, shape, dataset.dtype, _stamp(path))
        stored = dataset.chunks[0] if dataset.chunks else 0
    if stored:
        _check_stored_chunk(f"{path}:{key}", stored * shape[1] * dataset.dtype.itemsize)
    return _from_reader(reader, "hdf5", stored)


def _open_h5ad(path: str, key: str | None) -> da.Array:
    """AnnData: dense ``X``, or an ``obsm`` entry (``X_pca``, ``obsm/X_pca``)."""
    import h5py

    with h5py.File(path, "r") as f:
        obsm = sorted(f["obsm"]) if "obsm" in f else []
        dense_obsm = [name for name in obsm if isinstance(f["obsm"][name], h5py.Dataset)]
        if key in (None, "X", "/X"):
            if "X" not in f:
                raise InputError(f"{path!r} has no X; give an obsm entry: {dense_obsm}.")
            if not isinstance(f["X"], h5py.Dataset):
                encoding = f["X"].attrs.get("encoding-type", "sparse")
                raise InputError(
                    f"{path!r}: X is a {encoding} matrix, which dasklle does not read; embed a "
                    f"dense obsm entry instead, e.g. '{path}:X_pca' (this file has "
                    f"{dense_obsm or 'none'})."
                )
            dataset = "X"
        else:
            name = key.strip("/").removeprefix("obsm/")
            if name not in dense_obsm:
                raise InputError(
                    f"{path!r} has no dense obsm entry {name!r}; it has {dense_obsm or 'none'} "
                    "(or give no key for a dense X)."
                )
            dataset = f"obsm/{name}"
    return _open_hdf5(path, dataset)


def _open_tabular(path: str, columns: Sequence[str] | None) -> da.Array:
    """Numeric columns of a Parquet or CSV input (all of them unless ``columns`` names some)."""
    if path.lower().endswith(CSV_SUFFIXES):
        return _csv_array(path, tuple(columns or ()), _stamp(path))
    return _open_parquet(path, columns)


def _numeric_columns(path: str, names: Sequence[str], numeric: Sequence[str], columns) -> list:
    """The columns to read: the named ones (all numeric), else every numeric one."""
    if columns:
        missing = [c for c in columns if c not in names]
        if missing:
            raise InputError(f"{path!r} has no columns {missing}; it has {list(names)[:20]}.")
        refused = [c for c in columns if c not in numeric]
        if refused:
            raise InputError(f"columns {refused} of {path!r} are not numeric.")
        return list(columns)
    if not numeric:
        raise InputError(f"{path!r} has no numeric columns.")
    skipped = [c for c in names if c not in numeric]
    if skipped:
        logger.info("%s: reading %d numeric columns, skipping %s", path, len(numeric), skipped)
    return list(numeric)


@functools.lru_cache(maxsize=8)
def _csv_array(path: str, columns: tuple[str, ...], stamp: tuple[int, int]) -> da.Array:
    """Cached per file version: counting a CSV's rows parses all of it, which is done once."""
    import dask.dataframe as dd

    sep = "\t" if ".tsv" in path.lower() else ","
    # pandas' default float parser is off by an ulp on about a third of values
    frame = dd.read_csv(path, sep=sep, float_precision="round_trip")
    numeric = list(frame.select_dtypes("number").columns)
    selected = _numeric_columns(path, list(frame.columns), numeric, columns)
    return frame[selected].to_dask_array(lengths=True)


def _parquet_files(path: str) -> list[str]:
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith((".parquet", ".pq")))
        return [os.path.join(path, n) for n in names]
    return [path]


def _open_parquet(path: str, columns: Sequence[str] | None) -> da.Array:
    """One task per row group, its rows counted from the files' metadata (no data read)."""
    import dask
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = _parquet_files(path)
    schema = pq.read_schema(files[0])
    numeric = [
        f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
    ]
    selected = _numeric_columns(path, schema.names, numeric, columns)
    dtype = np.result_type(*(schema.field(c).type.to_pandas_dtype() for c in selected))
    read = dask.delayed(_read_row_group, pure=True)
    parts, largest = [], 0
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            largest = max(largest, rows)
            task = read(file, group, selected, dtype, _stamp(file))
            parts.append(da.from_delayed(task, shape=(rows, len(selected)), dtype=dtype))
    _check_stored_chunk(path, largest * len(selected) * np.dtype(dtype).itemsize)
    return da.concatenate(parts, axis=0)


def _read_row_group(file: str, group: int, columns: list, dtype, stamp) -> np.ndarray:
    """One row group's columns as a (rows, columns) array (``stamp`` only keys the task)."""
    import pyarrow.parquet as pq

    table = pq.ParquetFile(file).read_row_group(group, columns=columns)
    out = np.empty((table.num_rows, len(columns)), dtype=dtype)
    for j, name in enumerate(columns):  # column by column: no second full copy of the group
        out[:, j] = table.column(name).to_numpy()
    return out


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
    shape = _as_matrix_shape(where, array.shape)
    itemsize = _working_itemsize(array.dtype)
    _check_stored_chunk(where, array.chunks[0] * shape[1] * array.dtype.itemsize)
    rows = block_rows(*shape, itemsize, stored=array.chunks[0])
    return da.from_zarr(array, chunks=(rows, shape[1]))


def _working_itemsize(dtype) -> int:
    from .arrays import working_dtype

    return working_dtype(dtype).itemsize


def _check_stored_chunk(where: str, chunk_bytes: int) -> None:
    """Refuse, before any work, a stored chunk too large for a worker thread to decode: a
    task holds the chunk's compressed and decoded bytes at once, beside the worker's own
    footprint and the blocks it holds for other tasks (half of what it may fill before
    spilling)."""
    from dask.utils import format_bytes

    from ..tasks.memory import spill_fraction, thread_memory

    available = thread_memory()
    if 2 * chunk_bytes > spill_fraction() * available / 2:
        raise InputError(
            f"{where!r} is stored in chunks of {format_bytes(chunk_bytes)}; reading one takes "
            f"about twice that, more than a worker thread's share of memory "
            f"({format_bytes(available)}) allows. Rechunk the store to smaller row chunks, or "
            "give the workers more memory (or fewer threads)."
        )


def _is_zarr(path: str) -> bool:
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
    if columns and not lower.endswith(TABULAR_SUFFIXES) and not _is_parquet_folder(path):
        raise InputError(f"columns select columns of Parquet or CSV inputs; {path!r} is neither.")
    if _is_zarr(path) or lower.endswith(".zarr"):
        refuse_dasklle_store(path)
        return _open_zarr(path if key is None else f"{path}/{key}")
    if lower.endswith(".npy"):
        return _open_npy(path)
    if lower.endswith(".h5ad"):
        return _open_h5ad(path, key)
    if lower.endswith(HDF5_SUFFIXES):
        return _open_hdf5(path, key)
    if lower.endswith(TABULAR_SUFFIXES) or _is_parquet_folder(path):
        return _open_tabular(path, columns)
    raise InputError(f"{source!r} is not an input dasklle reads; it reads {ACCEPTED}.")


def _is_parquet_folder(path: str) -> bool:
    return os.path.isdir(path) and any(
        name.endswith((".parquet", ".pq")) for name in os.listdir(path)
    )


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
    """With a distributed client, X's row blocks as data on the workers; else None."""
    import dask

    from ..tasks.progress import distributed_client

    client = distributed_client()
    if client is None:
        return None

    starts = range(0, X.shape[0], rows)
    futures = client.scatter([X[s : s + rows] for s in starts])
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
        mapped = _memmap_input(X)
        if mapped is not None:
            return mapped, f"memory map of {X.filename}"
    X = np.asarray(X)
    if X.ndim == 2 and X.size:
        scattered = _scatter_rows(X, rows or X.shape[0])
        if scattered is not None:
            return scattered, "numpy array"
    return da.from_array(X, chunks=(rows or max(X.shape[0], 1),) + X.shape[1:]), "numpy array"


def _group_array(group) -> Any:
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
