"""Row-parallel sparse kernels for the eigen solver's products with M = B^T B (+ shift I).

The ``"amg"`` solver spends most of its time in products of the sparse B = I - W and B^T with
blocks of 10-20 vectors, and in the Chebyshev smoother's vector updates around them. scipy runs
a sparse-times-dense product in one thread and each numpy update as a separate pass over the
block. Here the rows are split between ``eigen.threads`` threads (numba kernels that release the
GIL; each row is computed by one thread in a fixed order, so the result does not depend on the
number of threads), and a smoothing step's updates are done in the same pass as its product.
Each row asks the CPU to prefetch the vectors that the row ``eigen.prefetch-rows-ahead`` places
ahead will read: once the vectors no longer fit in cache, the products otherwise wait on memory.

``CostOperator`` uses these kernels from ``eigen.row-kernel-min-rows`` rows on and imports this
module (and numba) only then; below, scipy's products, which need no compile. Measurements:
docs/design/eigen.md.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .. import config

CACHE_LINE_BYTES = 64

_pools: dict[int, ThreadPoolExecutor] = {}
_pool_lock = threading.Lock()


def row_threads() -> int:
    """The row kernels' thread count: ``eigen.threads``, or min(4, CPU count) when it is None."""
    threads = config.get("eigen.threads")
    if threads is None:
        return max(1, min(4, os.cpu_count() or 1))
    return max(1, int(threads))


def _executor(threads: int) -> ThreadPoolExecutor:
    """One pool per thread count, kept for the process (its threads start on first use)."""
    with _pool_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = ThreadPoolExecutor(threads, thread_name_prefix="dasklle-rows")
            _pools[threads] = pool
        return pool


def run_rows(kernel, n_rows: int, *args) -> None:
    """kernel(*args, ahead, start, stop) over row ranges that together cover range(n_rows),
    with ahead = ``eigen.prefetch-rows-ahead``."""
    threads = row_threads()
    ahead = int(config.get("eigen.prefetch-rows-ahead"))
    if threads == 1:
        kernel(*args, ahead, 0, n_rows)
        return
    bounds = np.linspace(0, n_rows, threads + 1).astype(np.int64)
    pool = _executor(threads)
    futures = [pool.submit(kernel, *args, ahead, bounds[t], bounds[t + 1]) for t in range(threads)]
    for future in futures:
        future.result()


@intrinsic
def _prefetch(typingctx, array, row, column):
    """Ask the CPU to bring array[row, column] into cache (llvm.prefetch: read, keep in all
    levels). It never faults, and the result does not depend on it."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        struct = context.make_array(array_type)(context, builder, args[0])
        where = [
            context.cast(builder, value, value_type, types.intp)
            for value, value_type in zip(args[1:], signature.args[1:], strict=True)
        ]
        pointer = cgutils.get_item_pointer(context, builder, array_type, struct, where)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch",
        )
        builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, column), codegen


@numba.njit(nogil=True, cache=True, inline="always")
def _prefetch_row_inputs(indptr, indices, Y, i, stop, ahead):  # pragma: no cover - compiled
    """Prefetch the rows of Y that row i + ahead of the CSR matrix reads.

    The products read Y's rows in the order of the neighbor lists; once Y no longer fits in the
    last-level cache, each row's reads would otherwise wait on memory."""
    row = i + ahead
    if row < stop:
        per_line = max(1, CACHE_LINE_BYTES // Y.itemsize)
        for jj in range(indptr[row], indptr[row + 1]):
            for c in range(0, Y.shape[1], per_line):
                _prefetch(Y, indices[jj], c)


@numba.njit(nogil=True, cache=True, inline="always")
def _add_row_product(indptr, indices, data, Y, i, stop, ahead, acc):  # pragma: no cover
    """acc += A[i] @ Y for row i of the CSR matrix A, once the reads of the row ahead places
    further (if before stop) are prefetched."""
    _prefetch_row_inputs(indptr, indices, Y, i, stop, ahead)
    for jj in range(indptr[i], indptr[i + 1]):
        j = indices[jj]
        a = data[jj]
        for c in range(acc.shape[0]):
            acc[c] += a * Y[j, c]


@numba.njit(nogil=True, cache=True)
def csr_times(indptr, indices, data, X, out, ahead, start, stop):  # pragma: no cover - compiled
    """out[i] = A[i] @ X for rows start..stop of the CSR matrix A."""
    acc = np.zeros(X.shape[1], dtype=out.dtype)
    for i in range(start, stop):
        acc[:] = 0
        _add_row_product(indptr, indices, data, X, i, stop, ahead, acc)
        out[i] = acc


@numba.njit(nogil=True, cache=True)
def csr_times_plus(indptr, indices, data, Y, shift, X, out, ahead, start, stop):  # pragma: no cover
    """out[i] = A[i] @ Y + shift * X[i] for rows start..stop."""
    acc = np.zeros(Y.shape[1], dtype=out.dtype)
    for i in range(start, stop):
        for c in range(acc.shape[0]):
            acc[c] = shift * X[i, c]
        _add_row_product(indptr, indices, data, Y, i, stop, ahead, acc)
        out[i] = acc


@numba.njit(nogil=True, cache=True)
def chebyshev_rows(
    indptr, indices, data, Y, shift, step, residual, x, d_inv, a, b, ahead, start, stop
):  # pragma: no cover - compiled
    """One Chebyshev step, rows start..stop, with A @ step = A[i] @ Y + shift * step[i]:
    residual -= A @ step; step = a * step + b * d_inv * residual; x += step."""
    acc = np.zeros(Y.shape[1], dtype=step.dtype)
    for i in range(start, stop):
        for c in range(acc.shape[0]):
            acc[c] = shift * step[i, c]
        _add_row_product(indptr, indices, data, Y, i, stop, ahead, acc)
        for c in range(acc.shape[0]):
            r = residual[i, c] - acc[c]
            s = a * step[i, c] + b * d_inv[i] * r
            residual[i, c] = r
            step[i, c] = s
            x[i, c] += s
