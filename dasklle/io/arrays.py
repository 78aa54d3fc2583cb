"""Any accepted input as a row-chunked dask array of working dtype, checked lazily."""

from __future__ import annotations

import os
from typing import Any

import dask.array as da
import numpy as np

from ..exceptions import InputError
from ..tasks.memory import block_rows
from .inputs import open_input


def working_dtype(dtype: np.dtype, name: str = "X") -> np.dtype:
    """float32 stays float32, other real numbers become float64; anything else is refused."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise ValueError(f"{name} must be real-valued; complex data ({dtype}) is not supported.")
    if dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers; got dtype {dtype}.")
    if dtype == np.float32 or dtype == np.float16:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _assert_finite_block(block: np.ndarray) -> np.ndarray:
    """Refuses NaN and infinity as each block is first read."""
    if not np.isfinite(block).all():
        raise ValueError("Input X contains NaN or infinity; every value must be finite.")
    return block


def as_dask_input(
    X: Any,
    chunk_rows: int | None = None,
    name: str = "X",
    *,
    n_neighbors: int = 10,
    columns=None,
) -> tuple[da.Array, str]:
    """Open any accepted input (see ``dasklle.io.inputs``) as a row-chunked dask array of working
    dtype, in blocks sized from the workers' memory (or ``chunk_rows``).

    Returns the array and a description of the input. Nothing is computed: the finiteness check
    runs lazily, block by block, when a stage first reads the data.
    """
    planned = chunk_rows
    if planned is None and not isinstance(X, str | os.PathLike | da.Array) and not is_zarr_node(X):
        shape = np.shape(X)
        if len(shape) == 2 and shape[0] and shape[1]:
            itemsize = working_dtype(getattr(X, "dtype", np.float64), name).itemsize
            planned = block_rows(*shape, itemsize, n_neighbors)
    try:
        array, kind = open_input(X, columns=columns, rows=planned)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {array.shape}.")
    if any(np.isnan(c) for c in array.shape) or any(np.isnan(c) for cs in array.chunks for c in cs):
        raise ValueError(
            f"{name} is a dask array with unknown chunk sizes; call "
            f"{name}.compute_chunk_sizes() first."
        )
    dtype = working_dtype(array.dtype, name)
    n_samples, n_features = array.shape
    if n_samples == 0 or n_features == 0:
        raise ValueError(
            f"{name} is empty: shape {array.shape}; need at least 2 samples and 1 feature."
        )
    # a stored input's chunks are read whole: keep blocks aligned with them
    stored = 0 if kind in ("numpy array", "dask array") else array.chunks[0][0]
    rows = chunk_rows or block_rows(n_samples, n_features, dtype.itemsize, n_neighbors, stored)
    array = array.astype(dtype).rechunk({0: min(rows, n_samples), 1: -1})
    array = array.map_blocks(_assert_finite_block, dtype=dtype, meta=np.empty((0, 0), dtype))
    return array, kind


def is_zarr_node(X: Any) -> bool:
    """A zarr array or group, told without importing zarr (its own chunks decide its blocks)."""
    return type(X).__module__.startswith("zarr")
