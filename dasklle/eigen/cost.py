"""The sparse weight matrix W, the embedding cost matrix M = (I - W)^T (I - W) and the operators
on M that the eigen solvers use.

``CostOperator`` applies M through products with B = I - W and B^T (k + 1 nonzeros a row each;
M couples the neighbors of neighbors, several times more), never forming it. From
``eigen.row-kernel-min-rows`` rows on, those products and the Chebyshev smoother's updates run
in dasklle's row-parallel kernels (``kernels``, numba, imported only then). Measurements:
docs/design/eigen.md.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import config


def weight_matrix(
    indices: np.ndarray, weights: np.ndarray, n_columns: int | None = None
) -> sp.csr_array:
    """W with W[i, indices[i, j]] = weights[i, j] (duplicate entries are summed).

    Parameters
    ----------
    indices : (n, k) neighbor indices of each row
    weights : (n, k) the rows' reconstruction weights
    n_columns : W's columns (n by default; more for a chunk of W's rows)

    Returns
    -------
    scipy.sparse.csr_array
        (n, n_columns).
    """
    n, k = indices.shape
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    # Copies: scipy sorts a csr's column indices in place, which would reorder the caller's
    # distance-sorted neighbor lists.
    shape = (n, n if n_columns is None else n_columns)
    W = sp.csr_array((weights.ravel().copy(), indices.ravel().copy(), indptr), shape=shape)
    W.sum_duplicates()
    return W


def cost_matrix(W: sp.csr_array) -> sp.csr_array:
    """M = (I - W)^T (I - W), the quadratic form whose bottom eigenvectors give the embedding."""
    n = W.shape[0]
    I_minus_W = sp.eye_array(n, format="csr", dtype=W.dtype) - W
    M = (I_minus_W.T @ I_minus_W).tocsr()
    M.sum_duplicates()
    return M


class CostOperator:
    """M = B^T B + shift * I applied through products with a sparse B (B = I - W), never formed.

    B and B^T together hold far fewer nonzeros than M, so products are faster and the client
    holds less (see docs/design/eigen.md).

    Parameters
    ----------
    B : sparse (m, n) matrix, usually I - W
    shift : multiple of the identity added to B^T B
    dtype : the precision of the products
    BT : optional B^T, reused when only dtype or shift change
    """

    def __init__(self, B, shift: float = 0.0, dtype=np.float64, *, BT=None):
        self.B = compact_csr(B, dtype)
        self._BT = None if BT is None else compact_csr(BT, dtype)
        self.shift = float(shift)
        self.dtype = np.dtype(dtype)
        self.shape = (B.shape[1], B.shape[1])

    @property
    def BT(self) -> sp.csr_array:
        """B^T as CSR, built at its first use: by the row kernels (scipy's products go through
        B's transposed view, and a solve on the workers never needs it here)."""
        if self._BT is None:
            self._BT = compact_csr(sp.csr_array(self.B).T, self.dtype)
        return self._BT

    @classmethod
    def from_weights(cls, W: sp.csr_array) -> CostOperator:
        """(I - W)^T (I - W) for the weight matrix W."""
        n = W.shape[0]
        return cls(sp.eye_array(n, format="csr", dtype=np.float64) - sp.csr_array(W))

    def _use_kernels(self, X) -> bool:
        """Whether a product with X runs in the row kernels (large M, a float array in dtype)."""
        return (
            self.shape[0] >= config.get("eigen.row-kernel-min-rows")
            and isinstance(X, np.ndarray)
            and X.dtype == self.dtype
            and X.ndim in (1, 2)
        )

    def __matmul__(self, X):
        if not self._use_kernels(X):
            # through B's transposed view: scipy's product with it is as fast, and B^T is never
            # built below the kernels' size
            out = self.B.T @ (self.B @ X)
            if self.shift:
                out += self.shift * X
            return out
        from .kernels import csr_times_plus, run_rows

        block = np.ascontiguousarray(X.reshape(X.shape[0], -1))
        out = np.empty_like(block)
        BT = self.BT
        run_rows(
            csr_times_plus,
            BT.shape[0],
            BT.indptr,
            BT.indices,
            BT.data,
            self._times_B(block),
            self.dtype.type(self.shift),
            block,
            out,
        )
        return out.reshape(X.shape)

    def _times_B(self, block: np.ndarray) -> np.ndarray:
        from .kernels import csr_times, run_rows

        B = self.B
        out = np.empty((B.shape[0], block.shape[1]), dtype=self.dtype)
        run_rows(csr_times, B.shape[0], B.indptr, B.indices, B.data, block, out)
        return out

    def times_few(self, X: np.ndarray) -> np.ndarray:
        """M @ X through B and B's transposed view, in scipy: for a few vectors, without
        building B^T or loading the row kernels."""
        out = self.B.T @ (self.B @ X)
        return out + self.shift * X if self.shift else out

    def diagonal(self) -> np.ndarray:
        """diag(B^T B) + shift: the squared column norms of B."""
        B = sp.csr_array(self.B)
        return np.bincount(B.indices, weights=B.data**2, minlength=self.shape[1]) + self.shift

    def astype(self, dtype) -> CostOperator:
        return CostOperator(self.B, self.shift, dtype, BT=self._BT)

    def with_shift(self, shift: float) -> CostOperator:
        return CostOperator(self.B, shift, self.dtype, BT=self._BT)

    def permuted(self, order: np.ndarray) -> CostOperator:
        """The operator of M[order][:, order] (B's rows follow, for products that read in order)."""
        return CostOperator(self.B[order][:, order], self.shift, self.dtype)

    def tocsr(self) -> sp.csr_array:
        """M itself, as a float64 CSR array."""
        B = sp.csr_array(self.B, dtype=np.float64)
        M = (B.T @ B).tocsr()
        if self.shift:
            M = (M + self.shift * sp.eye_array(self.shape[0], format="csr")).tocsr()
        M.sum_duplicates()
        return M


def chebyshev_step(A, step, residual, x, d_inv, a: float, b: float) -> None:
    """In place: residual -= A @ step, then step = a * step + b * d_inv[:, None] * residual and
    x += step (C-contiguous blocks in A's dtype). For a large CostOperator, in one pass after
    B @ step (at a million rows the smoother's vector updates cost as much as its products)."""
    if not (isinstance(A, CostOperator) and A._use_kernels(step)):
        residual -= A @ step
        step *= a
        step += b * (d_inv[:, None] * residual)
        x += step
        return
    from .kernels import chebyshev_rows, run_rows

    BT, t = A.BT, A.dtype.type
    Y = A._times_B(step)
    run_rows(
        chebyshev_rows,
        BT.shape[0],
        BT.indptr,
        BT.indices,
        BT.data,
        Y,
        t(A.shift),
        step,
        residual,
        x,
        d_inv,
        t(a),
        t(b),
    )


def compact_csr(A, dtype) -> sp.csr_array:
    """A as CSR in dtype with 32-bit indices where they fit (faster products)."""
    A = sp.csr_array(A, dtype=dtype)
    if max(A.shape) < 2**31 - 1 and A.nnz < 2**31 - 1:
        A.indices = A.indices.astype(np.int32, copy=False)
        A.indptr = A.indptr.astype(np.int32, copy=False)
    return A


def cost_matrix_reference(W: np.ndarray) -> np.ndarray:
    """Dense M, for checking the sparse one."""
    I_minus_W = np.eye(W.shape[0]) - W
    return I_minus_W.T @ I_minus_W


def alignment_matrix(
    index_sets: np.ndarray, local_matrices: np.ndarray, n_samples: int
) -> sp.csr_array:
    """M = sum_i P_i^T L_i P_i for index sets S_i (m, s) and local matrices L_i (m, s, s)."""
    m, s = index_sets.shape
    rows = np.repeat(index_sets, s, axis=1).ravel()
    cols = np.tile(index_sets, (1, s)).ravel()
    M = sp.coo_array((local_matrices.ravel(), (rows, cols)), shape=(n_samples, n_samples))
    return M.tocsr()


def sum_matrices(*parts: sp.csr_array) -> sp.csr_array:
    """The sum of sparse matrices (the combine step of a tree reduction)."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total.tocsr()
