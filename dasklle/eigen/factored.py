"""The ``"factored"`` eigen solver: shift-invert about 0 through one sparse LU of B = I - W.

scikit-learn's ARPACK factorises M = B^T B itself. M has the pattern of the neighbor graph
squared, so its LU fills in far more than the LU of B, whose pattern is the neighbor graph (k + 1
nonzeros a row). On high-dimensional data the LU of B fills in too, so ``"auto"`` keeps LOBPCG +
AMG there (docs/design/eigen.md has the measurements).

M's pseudo-inverse on the complement of the constant vector is B^+ B^+T, applied as two
triangular-solve pairs with projections that handle B's null vectors: B 1 = 0 (rows of W sum to
one) and u^T B = 0 for a left null vector u (found once by inverse iteration). For x with
1^T x = 0, z = B^-T x is defined up to multiples of u and the one in range(B) is z - u (u^T z);
then y = B^-1 z is defined up to a constant, and y - mean(y) is M^+ x. B itself is singular, so
the LU is of (1 + eps) I - W with eps = ``eigen.factor-shift``: on the complement of the null
vectors the solves then differ from exact ones by about eps / sigma_2(B) relatively, and the
residuals |Mv - lambda v| scale with eps.

ARPACK then runs on x -> M^+ x for its largest eigenvalues 1 / lambda. The constant vector is in
the operator's null space, so it is never returned and nothing has to be skipped. This needs a
connected neighbor graph (one null vector); the caller falls back to factorising M otherwise.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from .. import config


def graph_components(B) -> int:
    """Number of (weakly) connected components of the graph of B's pattern."""
    count, _ = connected_components(sp.csr_array(B), directed=True, connection="weak")
    return count


class PseudoInverse:
    """x -> M^+ x for M = B^T B, with B = I - W of a connected neighbor graph, via one LU of B.

    Parameters
    ----------
    B : sparse (n, n) I - W
    BT : optional B^T in CSR (the CSC layout of B that SuperLU factorises; built when missing)
    rng : numpy Generator for the inverse iteration that finds B's left null vector

    Raises
    ------
    RuntimeError
        When B is singular beyond the constant vector (its second singular value below
        ``eigen.singular-below``), or from SuperLU when the factorisation fails.
    """

    def __init__(self, B, BT=None, rng=None):
        n = B.shape[0]
        BT = sp.csr_array(B).T.tocsr() if BT is None else sp.csr_array(BT)
        # B^T in CSR has B's CSC arrays; SuperLU takes CSC.
        data = BT.data.astype(np.float64, copy=False)
        B_csc = sp.csc_array((data, BT.indices, BT.indptr), shape=(n, n), copy=False)
        eps = float(config.get("eigen.factor-shift"))
        shifted = (B_csc + eps * sp.eye_array(n, format="csc")).tocsc()
        # The symmetric-pattern ordering pays off only while pivots stay on the diagonal.
        self.lu = spla.splu(
            shifted,
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=float(config.get("eigen.diag-pivot-threshold")),
            options={"SymmetricMode": True},
        )
        del shifted
        self.shape = (n, n)
        rng = np.random.default_rng(rng)
        # Inverse iteration on two vectors: B^-T amplifies the left null vector by 1 / eps, so two
        # steps are plenty for it; the second vector tells whether there is another one.
        U = rng.standard_normal((n, 2))
        for _ in range(2):
            U, _ = np.linalg.qr(self.lu.solve(U, trans="T"))
        # Any unit vector orthogonal to u has |B^T q| >= sigma_2(B), so a second direction below
        # eigen.singular-below means B, and M, are singular beyond the constant vector
        # (duplicated points, too few neighbors).
        if np.linalg.norm(BT @ U[:, 1]) < float(config.get("eigen.singular-below")):
            raise RuntimeError("I - W is singular beyond the constant vector")
        self.left_null = U[:, 0]
        self.n_solves = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        self.n_solves += 1 if x.ndim == 1 else x.shape[1]
        z = self.lu.solve(x - x.mean(axis=0), trans="T")
        u = self.left_null
        z -= np.multiply.outer(u, u @ z)
        y = self.lu.solve(z)
        return y - y.mean(axis=0)


def bottom_eigenvectors(
    B, n_components: int, *, BT=None, tol: float = 0.0, max_iter=None, rng=None
) -> tuple[np.ndarray, np.ndarray, PseudoInverse]:
    """The n_components eigenpairs of M = B^T B just above its constant vector, ascending.

    ARPACK's Lanczos on M^+ (``PseudoInverse``).

    Parameters
    ----------
    B : sparse (n, n) I - W of a connected neighbor graph
    n_components : eigenpairs wanted
    BT : optional B^T in CSR
    tol, max_iter : ARPACK's relative accuracy of the Ritz values of M^+, and its restarts
    rng : seed or numpy Generator for the null-vector search and ARPACK's start

    Returns
    -------
    values, vectors, inverse
        The eigenvalues (ascending), the (n, n_components) eigenvectors, and the
        PseudoInverse (its ``n_solves`` counts the applications).
    """
    rng = np.random.default_rng(rng)
    inverse = PseudoInverse(B, BT, rng)
    operator = spla.LinearOperator(inverse.shape, matvec=inverse, matmat=inverse, dtype=np.float64)
    v0 = rng.uniform(-1, 1, inverse.shape[0])
    inverted, vectors = spla.eigsh(
        operator, n_components, which="LM", tol=tol, maxiter=max_iter, v0=v0 - v0.mean()
    )
    values = 1.0 / inverted
    order = np.argsort(values)
    return values[order], vectors[:, order], inverse
