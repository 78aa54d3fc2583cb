"""Row-parallel sparse kernels for the eigen solver's products with M = B^T B (+ shift I).

The ``"amg"`` solver spends most of its time in products of the sparse B = I - W and B^T (CSR,
11 nonzeros a row at k = 10) with blocks of 10-20 vectors, and in the Chebyshev smoother's
vector updates around them. scipy runs a sparse-times-dense product in one thread and each
numpy update as a separate pass over the block. Here the rows are split between threads
(numba kernels that release the GIL; each row is computed by one thread in a fixed order, so
the result does not depend on the number of threads), and a smoothing step's updates are done
in the same pass as its product.

Measured in the whole ``"amg"`` solve (numbers in ``blockamg``'s docstring): 5.06 -> 4.57 s an
iteration at 1,000,000 digits-784 points on this 2-core machine. Products use these kernels from
``assemble.ROW_KERNEL_MIN_ROWS`` rows on; below, scipy's, which need no compile.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

THREADS = max(1, min(4, os.cpu_count() or 1))

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="dasklle-rows")
        return _pool


def run_rows(kernel, n_rows: int, *args) -> None:
    """kernel(*args, start, stop) over row ranges that together cover range(n_rows)."""
    if THREADS == 1:
        kernel(*args, 0, n_rows)
        return
    bounds = np.linspace(0, n_rows, THREADS + 1).astype(np.int64)
    pool = _executor()
    futures = [pool.submit(kernel, *args, bounds[t], bounds[t + 1]) for t in range(THREADS)]
    for future in futures:
        future.result()


@numba.njit(nogil=True, cache=True, inline="always")
def _add_row_product(indptr, indices, data, Y, i, acc):  # pragma: no cover - compiled
    """acc += A[i] @ Y for row i of the CSR matrix A."""
    for jj in range(indptr[i], indptr[i + 1]):
        j = indices[jj]
        a = data[jj]
        for c in range(acc.shape[0]):
            acc[c] += a * Y[j, c]


@numba.njit(nogil=True, cache=True)
def csr_times(indptr, indices, data, X, out, start, stop):  # pragma: no cover - compiled
    """out[i] = A[i] @ X for rows start..stop of the CSR matrix A."""
    acc = np.zeros(X.shape[1], dtype=out.dtype)
    for i in range(start, stop):
        acc[:] = 0
        _add_row_product(indptr, indices, data, X, i, acc)
        out[i] = acc


@numba.njit(nogil=True, cache=True)
def csr_times_plus(indptr, indices, data, Y, shift, X, out, start, stop):  # pragma: no cover
    """out[i] = A[i] @ Y + shift * X[i] for rows start..stop."""
    acc = np.zeros(Y.shape[1], dtype=out.dtype)
    for i in range(start, stop):
        for c in range(acc.shape[0]):
            acc[c] = shift * X[i, c]
        _add_row_product(indptr, indices, data, Y, i, acc)
        out[i] = acc


@numba.njit(nogil=True, cache=True)
def chebyshev_rows(
    indptr, indices, data, Y, shift, step, residual, x, d_inv, a, b, start, stop
):  # pragma: no cover - compiled
    """One Chebyshev step, rows start..stop, with A @ step = A[i] @ Y + shift * step[i]:
    residual -= A @ step; step = a * step + b * d_inv * residual; x += step."""
    acc = np.zeros(Y.shape[1], dtype=step.dtype)
    for i in range(start, stop):
        for c in range(acc.shape[0]):
            acc[c] = shift * step[i, c]
        _add_row_product(indptr, indices, data, Y, i, acc)
        for c in range(acc.shape[0]):
            r = residual[i, c] - acc[c]
            s = a * step[i, c] + b * d_inv[i] * r
            residual[i, c] = r
            step[i, c] = s
            x[i, c] += s
