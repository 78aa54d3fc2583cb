"""Array files read per task: .npy (and memory maps of them), HDF5 datasets, AnnData .h5ad.

Each task holds a tiny reader (path, dataset, shape, dtype and the file's stamp) that
``dask.array.from_array`` slices; the task opens the file and reads only its own rows.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np

from ..exceptions import InputError

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


@dataclass(frozen=True)
class FileRows:
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


class NpyRows(FileRows):
    """A .npy file (or a raw memory-mapped array: ``key`` holds offset and order)."""

    def __getitem__(self, index):
        offset, order = self.key.split(":")
        array = np.memmap(
            self.path, dtype=self.dtype, mode="r", offset=int(offset), shape=self.shape, order=order
        )
        return np.array(array[index])


class HDF5Rows(FileRows):
    """A dataset of an HDF5 file, the file opened in each task (h5py handles do not pickle)."""

    def __getitem__(self, index):
        import h5py

        with h5py.File(self.path, "r") as f:
            return f[self.key][index]


def stamp(path: str) -> tuple[int, int]:
    """(mtime_ns, size): part of every read task's key, so a rewritten file is read anew."""
    status = os.stat(path)
    return (status.st_mtime_ns, status.st_size)


def from_reader(reader: FileRows, kind: str, stored: int = 0) -> da.Array:
    """The reader as a dask array; a task reads one planned block (aligned with ``stored``)."""
    from dask.base import tokenize

    from ..tasks.memory import block_rows

    rows = block_rows(*reader.shape, working_itemsize(reader.dtype), stored=stored)
    return da.from_array(
        reader,
        chunks=(rows, reader.shape[1]),
        asarray=True,
        lock=False,
        fancy=False,
        name=f"read-{kind}-{tokenize(reader)}",
        meta=np.empty((0, 0), dtype=reader.dtype),
    )


def open_npy(path: str) -> da.Array:
    """A .npy file, read through a memory map opened in each task (C or Fortran order)."""
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
    shape = as_matrix_shape(path, shape)
    order = "F" if fortran else "C"
    reader = NpyRows(path, f"{offset}:{order}", shape, np.dtype(dtype), stamp(path))
    return from_reader(reader, "npy")


def as_matrix_shape(where: str, shape: Sequence[int]) -> tuple[int, int]:
    """The shape as (rows, columns), or one line saying the input is not 2-D."""
    if len(shape) != 2:
        raise InputError(
            f"{where!r} must hold a 2-D array (n_samples, n_features); its shape is {tuple(shape)}."
        )
    return int(shape[0]), int(shape[1])


def memmap_input(X: np.memmap) -> da.Array | None:
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
    reader = NpyRows(path, f"{X.offset}:{order}", X.shape, X.dtype, stamp(path))
    return from_reader(reader, "npy")


def _hdf5_datasets(f) -> list[str]:
    """Every dataset's name in an open HDF5 file, for messages and the default choice."""
    import h5py

    found = []
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return found


def open_hdf5(path: str, key: str | None) -> da.Array:
    """An HDF5 dataset (the file's only 2-D one when ``key`` is None), read per chunk."""
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
        shape = as_matrix_shape(f"{path}:{key}", dataset.shape)
        reader = HDF5Rows(path, key, shape, dataset.dtype, stamp(path))
        stored = dataset.chunks[0] if dataset.chunks else 0
    if stored:
        check_stored_chunk(f"{path}:{key}", stored * shape[1] * dataset.dtype.itemsize)
    return from_reader(reader, "hdf5", stored)


def open_h5ad(path: str, key: str | None) -> da.Array:
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
    return open_hdf5(path, dataset)


def working_itemsize(dtype) -> int:
    """Bytes per value once converted to the working dtype (float32 or float64)."""
    from .arrays import working_dtype

    return working_dtype(dtype).itemsize


def check_stored_chunk(where: str, chunk_bytes: int) -> None:
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
