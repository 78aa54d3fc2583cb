"""Local steps of the LLE variants, batched over the points of a row block.

Each method turns a point's neighborhood into a small dense matrix ``L_i`` over the index set
``S_i = [i, N(i)]`` (k+1 indices), and M is the sum of the ``P_i^T L_i P_i`` (the alignment form
of Zhang & Zha 2004). For standard LLE, ``L_i = v v^T`` with ``v = [1, -w_i]``, which is
``(I - W)^T (I - W)`` row by row. The formulas follow scikit-learn's so that dense results agree:

- ``hessian`` (Donoho & Grimes 2003): Hessian estimator from a QR of [1, U, U_k * U_l];
- ``modified`` (Zhang & Wang 2006): several weight vectors per point from the local null space,
  sized by a global threshold ``eta`` (the median of a per-point ratio; computed in a first pass);
- ``ltsa`` (Zhang & Zha 2004): projection onto the complement of the local tangent space.

Every function is invariant to the sign and basis choices of the local eigen solvers, so batched
LAPACK calls give the same M as scikit-learn's per-point loop.
"""

from __future__ import annotations

import numpy as np

# scikit-learn's modified LLE regularises its local solves with this constant (not with `reg`).
MODIFIED_REG = 1e-3


def centred_gram_eigen(neighbor_points: np.ndarray, centre: np.ndarray | None):
    """Eigenvalues (descending) and eigenvectors of each local Gram matrix G G^T.

    ``G`` is the neighborhood minus ``centre`` (the point itself), or minus its mean when
    ``centre`` is None. Returns (m, k) values and (m, k, k) vectors.
    """
    Z = neighbor_points.astype(np.float64, copy=False)
    Z = Z - (Z.mean(1, keepdims=True) if centre is None else centre[:, None, :].astype(np.float64))
    values, vectors = np.linalg.eigh(Z @ Z.transpose(0, 2, 1))
    return values[:, ::-1], vectors[:, :, ::-1]


def _outer(F: np.ndarray) -> np.ndarray:
    return F @ F.transpose(0, 2, 1)


def standard_local(weights: np.ndarray) -> np.ndarray:
    """L_i = v v^T with v = [1, -w_i]."""
    v = np.concatenate([np.ones((weights.shape[0], 1)), -weights], axis=1)
    return v[:, :, None] * v[:, None, :]


def hessian_local(neighbor_points: np.ndarray, n_components: int, hessian_tol: float) -> np.ndarray:
    m, k, _ = neighbor_points.shape
    d = n_components
    _, U = centred_gram_eigen(neighbor_points, None)
    U = U[:, :, :d]
    columns = [np.ones((m, k, 1)), U]
    for a in range(d):
        columns.append(U[:, :, a : a + 1] * U[:, :, a:d])
    Y = np.concatenate(columns, axis=2)
    Q, _ = np.linalg.qr(Y, mode="complete")
    w = Q[:, :, d + 1 :]
    S = w.sum(1, keepdims=True)
    S = np.where(np.abs(S) < hessian_tol, 1.0, S)
    w = w / S
    L = np.zeros((m, k + 1, k + 1))
    L[:, 1:, 1:] = _outer(w)
    return L


def ltsa_local(neighbor_points: np.ndarray, n_components: int) -> np.ndarray:
    m, k, _ = neighbor_points.shape
    _, U = centred_gram_eigen(neighbor_points, None)
    G = np.concatenate([np.full((m, k, 1), 1.0 / np.sqrt(k)), U[:, :, :n_components]], axis=2)
    L = np.zeros((m, k + 1, k + 1))
    L[:, 1:, 1:] = np.eye(k) - _outer(G)
    return L


def modified_spectrum(points: np.ndarray, neighbor_points: np.ndarray, n_features: int):
    """Local eigen-decomposition for modified LLE: (m, nev) values and (m, k, k) vectors."""
    k = neighbor_points.shape[1]
    values, vectors = centred_gram_eigen(neighbor_points, points)
    nev = min(n_features, k)
    return np.maximum(values[:, :nev], 0.0), vectors


def modified_ratio(evals: np.ndarray, n_components: int) -> np.ndarray:
    """rho_i: the ratio of the small to the large local eigenvalues (its median is eta)."""
    return evals[:, n_components:].sum(1) / evals[:, :n_components].sum(1)


def modified_local(
    points: np.ndarray,
    neighbor_points: np.ndarray,
    n_components: int,
    eta: float,
    modified_tol: float,
) -> np.ndarray:
    m, k, n_features = neighbor_points.shape
    evals, V = modified_spectrum(points, neighbor_points, n_features)
    nev = evals.shape[1]

    # Regularised weights, as in standard LLE but from the eigen-decomposition.
    reg = MODIFIED_REG * evals.sum(1)
    tmp = V.sum(1)  # V^T 1
    tmp[:, :nev] /= evals + reg[:, None]
    tmp[:, nev:] /= reg[:, None]
    w_reg = np.einsum("mij,mj->mi", V, tmp)
    w_reg /= w_reg.sum(1, keepdims=True)

    # s_i: the size of the local "almost null space".
    cumulative = np.cumsum(evals, 1)
    eta_range = cumulative[:, -1:] / cumulative[:, :-1] - 1
    s = np.array([np.searchsorted(row[::-1], eta) for row in eta_range], dtype=int) + k - nev

    L = np.empty((m, k + 1, k + 1))
    for size in np.unique(s):  # one batched pass per distinct s_i, not one per point
        rows = np.flatnonzero(s == size)
        Vi = V[rows, :, k - size :]
        a = Vi.sum(1)  # Vi^T 1, shape (r, size)
        alpha = np.linalg.norm(a, axis=1) / np.sqrt(size)
        h = alpha[:, None] - a
        norm_h = np.linalg.norm(h, axis=1, keepdims=True)
        h = np.where(norm_h < modified_tol, 0.0, h / np.where(norm_h == 0, 1.0, norm_h))
        Wi = (
            Vi
            - 2 * np.einsum("rks,rs->rk", Vi, h)[:, :, None] * h[:, None, :]
            + (1 - alpha)[:, None, None] * w_reg[rows, :, None]
        )
        F = np.concatenate([-np.ones((len(rows), 1, size)), Wi], axis=1)
        L[rows] = _outer(F)
    return L
