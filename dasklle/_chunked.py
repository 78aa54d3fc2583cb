"""The one helper that maps a function over aligned row blocks of dask arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np


def row_offsets(row_chunks: Sequence[int]) -> np.ndarray:
    """Global index of the first row of every block."""
    return np.concatenate([[0], np.cumsum(row_chunks)[:-1]]).astype(np.int64)


def map_row_blocks(
    func: Callable[..., np.ndarray],
    arrays: Sequence[da.Array],
    *,
    out_cols: int | None,
    dtype: Any,
    per_block: Sequence[Sequence[Any]] | None = None,
    **kwargs: Any,
) -> da.Array:
    """Apply ``func(*blocks, *per_block[i], row_offset=..., **kwargs)`` to every row block.

    All ``arrays`` are rechunked to the row chunks of the first one (and to a single chunk in
    their other dimensions), so block ``i`` of every array covers the same rows. ``per_block``
    holds extra arguments for each block (numpy arrays, dask arrays or delayed objects), which is
    what the stages need when a block reads rows that live in other blocks. The result is a lazy
    dask array with the same row chunks and ``out_cols`` columns (1-D when ``out_cols`` is None).
    """
    row_chunks = arrays[0].chunks[0]
    offsets = row_offsets(row_chunks)
    blocks = []
    for array in arrays:
        single = {axis: -1 for axis in range(1, array.ndim)}
        aligned = array.rechunk({0: row_chunks, **single})
        blocks.append(aligned.to_delayed().reshape(len(row_chunks)))
    task = dask.delayed(func, pure=True)
    parts = []
    for i, n_rows in enumerate(row_chunks):
        extra = tuple(per_block[i]) if per_block is not None else ()
        part = task(
            *(b[i] for b in blocks),
            *extra,
            row_offset=int(offsets[i]),
            **kwargs,
        )
        shape = (n_rows,) if out_cols is None else (n_rows, out_cols)
        meta = np.empty((0,) * len(shape), dtype=dtype)
        parts.append(da.from_delayed(part, shape=shape, dtype=dtype, meta=meta))
    return da.concatenate(parts, axis=0)
