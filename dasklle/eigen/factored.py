"""Shift-invert about 0 through one sparse LU of B = I - W instead of M = B^T B.

scikit-learn's ARPACK factorises M itself. M has the pattern of the neighbor graph squared, so
its LU fills in far more than the LU of B, whose pattern is the neighbor graph (k + 1 nonzeros a
row). Measured on swiss-roll weights (k = 12, SuperLU, `MMD_AT_PLUS_A` ordering, one thread):

    n            LU of M (COLAMD, scipy's default)      LU of B (this module)
    100,000      12.2 s, 71.1M nonzeros, 1.9 GB          1.2 s,  10.2M nonzeros, 0.5 GB
    1,000,000    ~590 s, 14 GB (the whole ARPACK run)    31 s,  148M nonzeros

and the whole eigen stage at 1,000,000 points (factor, 21 solves, residuals) takes 64 s with a
peak of 2.8 GB in the process. On high-dimensional data the LU of B fills in too (digits-784 at
100,000 points: still factoring after 120 s and 1.8 GB), so ``"auto"`` keeps LOBPCG + AMG there.

M's pseudo-inverse on the complement of the constant vector is B^+ B^+T, applied as two
triangular-solve pairs with projections that handle B's null vectors: B 1 = 0 (rows of W sum to
one) and u^T B = 0 for a left null vector u (found once by inverse iteration). For x with
1^T x = 0, z = B^-T x is defined up to multiples of u and the one in range(B) is z - u (u^T z);
then y = B^-1 z is defined up to a constant, and y - mean(y) is M^+ x. B itself is singular, so
the LU is of (1 + eps) I - W with eps = FACTOR_SHIFT: on the complement of the null vectors the
solves then differ from exact ones by about eps / sigma_2(B) relatively. Measured: the residuals
|Mv - lambda v| are about 200 eps (2e-14 at 100,000 and 1,000,000 swiss-roll points, whose
bottom eigenvalues are 6e-13 and 1e-14), but the vectors move far less: at 1,000,000 points the
sine of the subspace angle between the results for eps = 1e-12, 1e-13 and 1e-14 is 6e-8 and
6e-9, and at 100,000 points the result is 5e-6 from ARPACK on M (whose own residual is 1e-15).

ARPACK then runs on x -> M^+ x for its largest eigenvalues 1 / lambda. The constant vector is in
the operator's null space, so it is never returned and nothing has to be skipped. This needs a
connected neighbor graph (one null vector); the caller falls back to factorising M otherwise.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

# Diagonal shift that makes I - W factorisable (see the module docstring). Residuals scale with
# it (1e-10 gave 2e-11 at 100,000 swiss-roll points, 1e-13 gave 2e-14); much smaller shifts drown
# in the rounding of 1 + eps.
FACTOR_SHIFT = 1e-13
# SuperLU's threshold for keeping the diagonal pivot: the symmetric-pattern ordering only pays
# off when pivots stay on the diagonal (B's is 1 + eps, its rows' other entries are the
# weights); 0.1 pivots away from a diagonal under 10% of its column's largest entry (fill at 100,000
# swiss-roll points: 9.8M nonzeros at 0.01, 10.2M at 0.1, 10.9M with full partial pivoting).
DIAG_PIVOT_THRESHOLD = 0.1
# Smallest second singular value of I - W taken as non-singular (I - W has entries of order 1).
SINGULAR_BELOW = 1e-10


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
    """

    def __init__(self, B, BT=None, rng=None):
        n = B.shape[0]
        BT = sp.csr_array(B).T.tocsr() if BT is None else sp.csr_array(BT)
        # B^T in CSR has B's CSC arrays; SuperLU takes CSC.
        data = BT.data.astype(np.float64, copy=False)
        B_csc = sp.csc_array((data, BT.indices, BT.indptr), shape=(n, n), copy=False)
        shifted = (B_csc + FACTOR_SHIFT * sp.eye_array(n, format="csc")).tocsc()
        self.lu = spla.splu(
            shifted,
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=DIAG_PIVOT_THRESHOLD,
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
        # Any unit vector orthogonal to u has |B^T q| >= sigma_2(B) (about 1e-7 at 1,000,000
        # swiss-roll points), so a second direction below SINGULAR_BELOW means B, and M, are
        # singular beyond the constant vector (duplicated points, too few neighbors).
        if np.linalg.norm(BT @ U[:, 1]) < SINGULAR_BELOW:
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

    ARPACK's Lanczos on M^+ (``PseudoInverse``); tol and max_iter go to ARPACK (relative accuracy
    of the Ritz values of M^+, and its number of restarts).
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
