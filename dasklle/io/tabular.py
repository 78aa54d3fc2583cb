"""Tables: numeric columns of Parquet files (through pyarrow) and CSV files (through dask)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

import dask.array as da
import numpy as np

from ..exceptions import InputError
from .files import check_stored_chunk, stamp

logger = logging.getLogger("dasklle")

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
TABULAR_SUFFIXES = (".parquet", ".pq", *CSV_SUFFIXES)


def open_tabular(path: str, columns: Sequence[str] | None) -> da.Array:
    """Numeric columns of a Parquet or CSV input (all of them unless ``columns`` names some)."""
    if path.lower().endswith(CSV_SUFFIXES):
        return _csv_array(path, tuple(columns or ()), stamp(path))
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
def _csv_array(path: str, columns: tuple[str, ...], version: tuple[int, int]) -> da.Array:
    """Cached per file version: counting a CSV's rows parses all of it, which is done once."""
    import dask.dataframe as dd

    sep = "\t" if ".tsv" in path.lower() else ","
    # pandas' default float parser is off by an ulp on about a third of values
    frame = dd.read_csv(path, sep=sep, float_precision="round_trip")
    numeric = list(frame.select_dtypes("number").columns)
    selected = _numeric_columns(path, list(frame.columns), numeric, columns)
    return frame[selected].to_dask_array(lengths=True)


def _parquet_files(path: str) -> list[str]:
    """A Parquet file, or the Parquet files of a folder in name order."""
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
            task = read(file, group, selected, dtype, stamp(file))
            parts.append(da.from_delayed(task, shape=(rows, len(selected)), dtype=dtype))
    check_stored_chunk(path, largest * len(selected) * np.dtype(dtype).itemsize)
    return da.concatenate(parts, axis=0)


def _read_row_group(file: str, group: int, columns: list, dtype, version) -> np.ndarray:
    """One row group's columns as a (rows, columns) array (``version`` only keys the task)."""
    import pyarrow.parquet as pq

    table = pq.ParquetFile(file).read_row_group(group, columns=columns)
    out = np.empty((table.num_rows, len(columns)), dtype=dtype)
    for j, name in enumerate(columns):  # column by column: no second full copy of the group
        out[:, j] = table.column(name).to_numpy()
    return out


def is_parquet_folder(path: str) -> bool:
    """A folder holding Parquet files (as dask and Spark write them)."""
    return os.path.isdir(path) and any(
        name.endswith((".parquet", ".pq")) for name in os.listdir(path)
    )
