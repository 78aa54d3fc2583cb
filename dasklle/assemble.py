"""Stage 3: the sparse weight matrix W and the embedding cost matrix M = (I - W)^T (I - W)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def weight_matrix(
    indices: np.ndarray, weights: np.ndarray, n_samples: int | None = None
) -> sp.csr_array:
    """W with W[i, indices[i, j]] = weights[i, j] (duplicate entries are summed)."""
    n, k = indices.shape
    n_cols = n if n_samples is None else n_samples
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    # Copies: scipy sorts a csr's column indices in place, which would reorder the caller's
    # distance-sorted neighbor lists.
    W = sp.csr_array((weights.ravel().copy(), indices.ravel().copy(), indptr), shape=(n, n_cols))
    W.sum_duplicates()
    return W


def cost_matrix(W: sp.csr_array) -> sp.csr_array:
    """M = (I - W)^T (I - W), the quadratic form whose bottom eigenvectors give the embedding."""
    n = W.shape[0]
    I_minus_W = sp.eye_array(n, format="csr", dtype=W.dtype) - W
    M = (I_minus_W.T @ I_minus_W).tocsr()
    M.sum_duplicates()
    return M


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
