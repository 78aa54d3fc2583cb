"""Row-parallel sparse kernels for the eigen solver's products with M = B^T B (+ shift I).

The ``"amg"`` solver spends most of its time in products of the sparse B = I - W and B^T (CSR,
11 nonzeros a row at k = 10) with blocks of 10-20 vectors, and in the Chebyshev smoother's
vector updates around them. scipy runs a sparse-times-dense product in one thread and each
numpy update as a separate pass over the block. Here the rows are split between threads
(numba kernels that release the GIL; each row is computed by one thread in a fixed order, so
the result does not depend on the number of threads), and a smoothing step's updates are done
in the same pass as its product. Each row asks the CPU to prefetch the vectors that a row a few
places ahead will read (``_prefetch_row_inputs``): from 1,000,000 rows on, the vectors no
longer fit in cache and the products otherwise wait on memory.

Measured in the whole ``"amg"`` solve (numbers in ``blockamg``'s docstring): 5.06 -> 4.57 s an
iteration at 1,000,000 digits-784 points on this 2-core machine; with the prefetch, a V-cycle
on 10 vectors took 1.86 s against 2.55 s and a product with M on 20 float64 vectors 0.29 s
against 0.46 s there (medians of 8 interleaved runs; at 100,000 points 150 ms against 145 ms
and 19 ms against 26 ms). Products use these kernels from
``assemble.ROW_KERNEL_MIN_ROWS`` rows on; below, scipy's, which need no compile.
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


# Rows ahead of the current one whose neighbors' vectors are prefetched (2, 4 and 8 measured).
PREFETCH_ROWS_AHEAD = 4
CACHE_LINE_BYTES = 64


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
def _prefetch_row_inputs(indptr, indices, Y, i, stop):  # pragma: no cover - compiled
    """Prefetch the rows of Y that row i + PREFETCH_ROWS_AHEAD of the CSR matrix reads.

    The products read Y's rows in the order of the neighbor lists: at 1,000,000 rows Y (40 MB
    in float32) no longer fits this machine's 32 MB L3 cache and each row's reads wait on
    memory. Measured there (B and B^T products, rows in RCM order): 159 -> 100 ms for 10
    float32 columns, 255 -> 168 ms for 20 float64 ones."""
    ahead = i + PREFETCH_ROWS_AHEAD
    if ahead < stop:
        per_line = max(1, CACHE_LINE_BYTES // Y.itemsize)
        for jj in range(indptr[ahead], indptr[ahead + 1]):
            for c in range(0, Y.shape[1], per_line):
                _prefetch(Y, indices[jj], c)


@numba.njit(nogil=True, cache=True, inline="always")
def _add_row_product(indptr, indices, data, Y, i, stop, acc):  # pragma: no cover - compiled
    """acc += A[i] @ Y for row i of the CSR matrix A, once the reads of the row
    PREFETCH_ROWS_AHEAD places ahead (if before stop) are prefetched."""
    _prefetch_row_inputs(indptr, indices, Y, i, stop)
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
        _add_row_product(indptr, indices, data, X, i, stop, acc)
        out[i] = acc


@numba.njit(nogil=True, cache=True)
def csr_times_plus(indptr, indices, data, Y, shift, X, out, start, stop):  # pragma: no cover
    """out[i] = A[i] @ Y + shift * X[i] for rows start..stop."""
    acc = np.zeros(Y.shape[1], dtype=out.dtype)
    for i in range(start, stop):
        for c in range(acc.shape[0]):
            acc[c] = shift * X[i, c]
        _add_row_product(indptr, indices, data, Y, i, stop, acc)
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
        _add_row_product(indptr, indices, data, Y, i, stop, acc)
        for c in range(acc.shape[0]):
            r = residual[i, c] - acc[c]
            s = a * step[i, c] + b * d_inv[i] * r
            residual[i, c] = r
            step[i, c] = s
            x[i, c] += s
