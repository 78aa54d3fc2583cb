"""Checks at the public boundary: parameters and inputs, with messages that name the parameter."""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import zarr

from .io.inputs import InputError, open_input
from .tasks.memory import block_rows

METHODS = ("standard", "hessian", "modified", "ltsa")
EIGEN_SOLVERS = ("auto", "dense", "arpack", "factored", "lobpcg", "amg")
NEIGHBORS_ALGORITHMS = ("auto", "brute", "kd_tree", "ball_tree", "nndescent", "projected")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int, high: float = np.inf) -> int:
    """An integer in [low, high]."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer in [{low}, {high}]; got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value}.")
    return int(value)


def check_real(name: str, value: Any, low: float = 0.0) -> float:
    """A finite real number >= low."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number >= {low}; got {value!r}.")
    if not (np.isfinite(value) and value >= low):
        raise ValueError(f"{name} must be a finite real number >= {low}; got {value}.")
    return float(value)


def check_option(name: str, value: Any, options: tuple[str, ...]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}.")
    return value


def check_parameters(params: Mapping[str, Any]) -> None:
    """Validate the estimator's parameters (data-independent ranges only)."""
    check_int("n_neighbors", params["n_neighbors"], 1)
    check_int("n_components", params["n_components"], 1)
    check_real("reg", params["reg"])
    check_option("eigen_solver", params["eigen_solver"], EIGEN_SOLVERS)
    check_real("tol", params["tol"])
    check_int("max_iter", params["max_iter"], 1)
    check_option("method", params["method"], METHODS)
    check_real("hessian_tol", params["hessian_tol"])
    check_real("modified_tol", params["modified_tol"])
    check_option("neighbors_algorithm", params["neighbors_algorithm"], NEIGHBORS_ALGORITHMS)
    n_jobs = params.get("n_jobs")
    if n_jobs is not None and not _is_int(n_jobs):
        raise TypeError(f"n_jobs must be None or an integer; got {n_jobs!r}.")
    random_state = params.get("random_state")
    if not (
        random_state is None
        or _is_int(random_state)
        or isinstance(random_state, np.random.RandomState | np.random.Generator)
    ):
        raise TypeError(
            f"random_state must be None, an integer or a numpy RandomState; got {random_state!r}."
        )
    n_eigenvalues = params.get("n_eigenvalues")
    if n_eigenvalues is not None:
        check_int("n_eigenvalues", n_eigenvalues, 1)
    chunk_rows = params.get("chunk_rows")
    if chunk_rows is not None:
        check_int("chunk_rows", chunk_rows, 1)
    for flag in ("verbose", "resume", "overwrite"):
        if flag in params and not isinstance(params[flag], bool | int | np.bool_):
            raise TypeError(f"{flag} must be True or False; got {params[flag]!r}.")
    store = params.get("store")
    if store is not None and not isinstance(store, str | os.PathLike):
        raise TypeError(f"store must be None or a path to a zarr store; got {store!r}.")


def check_data_dependent(
    n_samples: int,
    n_features: int,
    n_neighbors: int,
    n_components: int,
    method: str,
    n_eigenvalues: int | None = None,
) -> None:
    """Ranges that depend on the data's shape."""
    if n_samples < 2:
        raise ValueError(f"X must have at least 2 samples; got n_samples = {n_samples}.")
    if n_neighbors >= n_samples:
        raise ValueError(
            f"Expected n_neighbors < n_samples, but n_samples = {n_samples}, "
            f"n_neighbors = {n_neighbors}: n_neighbors must be in [1, {n_samples - 1}]."
        )
    if n_components > n_features:
        raise ValueError(
            f"n_components must be <= the input dimension {n_features}; got {n_components} "
            "(output dimension must be less than or equal to input dimension)."
        )
    if n_components >= n_samples:
        raise ValueError(f"n_components must be < n_samples = {n_samples}; got {n_components}.")
    if n_eigenvalues is not None and n_eigenvalues >= n_samples:
        raise ValueError(f"n_eigenvalues must be < n_samples = {n_samples}; got {n_eigenvalues}.")
    if method == "hessian":
        needed = n_components * (n_components + 3) // 2
        if n_neighbors <= needed:
            raise ValueError(
                "for method='hessian', n_neighbors must be greater than "
                f"[n_components * (n_components + 3) / 2] = {needed}; got {n_neighbors}."
            )
    if method == "modified" and n_neighbors < n_components:
        raise ValueError(
            "modified LLE requires n_neighbors >= n_components; "
            f"got n_neighbors = {n_neighbors}, n_components = {n_components}."
        )


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
    if planned is None and not isinstance(X, str | os.PathLike | da.Array | zarr.Array):
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
