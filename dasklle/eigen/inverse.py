"""An approximate M^+ as the preconditioner of ``"amg"`` in this process (``eigen.preconditioner``
= ``"inverse"``).

M = B^T B with B = I - W, so M^+ r = B^+ (B^T)^+ r for r orthogonal to the constant vector:
two linear solves, each by GMRES on all the block's columns at once, preconditioned by an
aggregation cycle for B itself (or B^T) over the kNN graph's aggregates. A cycle for M cannot
resolve M's bottom modes (M acts like a fourth-order operator), so LOBPCG with it needs more
iterations the more points there are; solved to a relative residual of ``eigen.inverse-tol``,
these solves keep that count nearly flat (measurements: docs/design/eigen.md).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from .. import config
from . import multigrid

SHIFT = 1e-9  # makes the coarsest level (singular, as B) factorisable
LU_BYTES_AN_ENTRY = 12  # a float64 value and its int32 index
CONVERGED_NULL = 1e-4  # |B^T u| of a unit u from a solve that converged, far below inverse-tol
NULL_RTOL = 1e-10  # the solve for u: relative residual
ONE_PASS_RTOL = 1e-4  # from here up, one Gram-Schmidt pass keeps the basis orthogonal enough


class CycleForB:
    """A cycle for B (``transpose``: for B^T) over aggregates of the kNN graph: damped Jacobi
    smoothing, Galerkin coarse levels P^T A P, the first that ``factorable`` allows solved by a
    sparse LU (an exact coarse solve keeps the cycle strong), each coarse level above it by
    ``eigen.inverse-coarse-cycles`` cycles of its own (2: a W-cycle).
    Coarse levels are aggregated over their graph's ``eigen.inverse-coarse-edges`` heaviest
    edges a node. ``BT``: B^T where the caller holds it already (a CostOperator's), else
    built here. Without ``coarsen``, B is a coarse level: the first of a cycle whose finest
    level runs on the workers, factored if it can be."""

    def __init__(self, B, graph, rng, sweeps: int = 2, BT=None, coarsen: bool = True):
        self.sweeps, self.finest = sweeps, coarsen
        self.cycles = int(config.get("eigen.inverse-coarse-cycles"))
        edges = int(config.get("eigen.inverse-coarse-edges"))
        self.B = sp.csr_array(B).tocsr()
        self.BT = sp.csr_array(self.B.T if BT is None else BT).tocsr()
        self.operators, self.prolongators = [self.B], []
        while (coarsen and len(self.operators) == 1) or not factorable(self.operators[-1]):
            if self.prolongators or not coarsen:  # a graph between aggregates
                graph = multigrid.strongest_edges(graph, edges)
            P = multigrid.aggregation(graph)
            if P.shape[1] >= 0.8 * P.shape[0]:  # the graph no longer coarsens
                break
            self.prolongators.append(P)
            self.operators.append(sp.csr_array(P.T @ self.operators[-1] @ P).tocsr())
            graph = multigrid.coarse_graph(graph, P)
        self.damping = [_damping(A, rng) for A in self.operators[:-1]]
        self.coarsest = _lu(self.operators.pop())
        self.transposed = [self.BT] + [sp.csr_array(A.T).tocsr() for A in self.operators[1:]]

    def __call__(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        if self.finest and self.prolongators:
            return self._cycle(0, b, transpose)
        return self._solved(0, b, transpose)

    def _solved(self, level: int, b: np.ndarray, transpose: bool) -> np.ndarray:
        """A coarse level's correction: its LU's solve, or ``cycles`` cycles from it."""
        if level == len(self.prolongators):
            return self.coarsest.solve(np.asarray(b, order="F"), "T" if transpose else "N")
        A = self._operator(level, transpose)
        x = self._cycle(level, b, transpose)
        for _ in range(self.cycles - 1):
            x += self._cycle(level, b - A @ x, transpose)
        return x

    def _operator(self, level: int, transpose: bool):
        return self.transposed[level] if transpose else self.operators[level]

    def _cycle(self, level: int, b: np.ndarray, transpose: bool) -> np.ndarray:
        A = self._operator(level, transpose)
        weights = self.damping[level]
        x = weights * b
        for _ in range(self.sweeps - 1):
            x += weights * (b - A @ x)
        P = self.prolongators[level]
        x += P @ self._solved(level + 1, P.T @ (b - A @ x), transpose)
        for _ in range(self.sweeps):
            x += weights * (b - A @ x)
        return x


def _lu(A):
    """SuperLU's factors of A, shifted by SHIFT times its mean diagonal (A is singular)."""
    shift = SHIFT * np.abs(A.diagonal()).mean()
    return sla.splu(sp.csc_matrix(A + shift * sp.eye_array(A.shape[0])))


def factorable(A) -> bool:
    """Whether a level is solved by a sparse LU: it has at most ``eigen.inverse-coarse-rows``
    rows, or the LU of its leading block of that many rows and of half of them predict a
    fill whose bytes fit ``eigen.inverse-coarse-bytes``. The fill a row grows with the rows
    as a power that depends on the data: slowly where the points have few intrinsic
    dimensions, fast on digits-784 (docs/design/eigen.md)."""
    rows, n = int(config.get("eigen.inverse-coarse-rows")), A.shape[0]
    if n <= rows:
        return True
    allowed = config.get_bytes("eigen.inverse-coarse-bytes") / (n * LU_BYTES_AN_ENTRY)  # a row
    half = _fill_a_row(A, rows // 2) if allowed > 0 else np.inf
    if half > allowed:  # the fill a row only grows with the rows
        return False
    whole = _fill_a_row(A, rows)
    growth = max(0.0, np.log2(whole / half))  # the power, from one doubling
    return whole * (n / rows) ** growth <= allowed


def _fill_a_row(A, size: int) -> float:
    """Entries of L and U a row for the LU of A's leading (size x size) block (the leading
    rows of a level in the locality order: a compact part of the graph)."""
    factors = _lu(sp.csr_array(A)[:size][:, :size])
    return (factors.L.nnz + factors.U.nnz) / size


def _damping(A, rng) -> np.ndarray:
    """Jacobi's weights omega / diag(A), omega = 1 / |lambda_max(D^-1 A)| (from ARPACK, seeded)."""
    inverse_diagonal = 1.0 / A.diagonal()
    scaled = sp.diags_array(inverse_diagonal) @ A
    start = rng.standard_normal(A.shape[0])
    largest = sla.eigs(scaled, k=1, which="LM", v0=start, tol=1e-2, return_eigenvectors=False)
    return (inverse_diagonal / (1.05 * abs(largest[0])))[:, None]


def gmres(A, precondition, b: np.ndarray, rtol: float, restart: int, max_restarts: int):
    """x with |b - A x| <= rtol |b| in each column (or the restarts spent): right-preconditioned
    GMRES on all columns at once, each with its own Krylov basis (in b's dtype) and Givens
    rotations.

    ``A(X)`` and ``precondition(X)`` act on (n, c) blocks; the preconditioner must be linear.
    """
    x = np.zeros_like(b)
    norms = np.linalg.norm(b, axis=0)
    passes = gram_schmidt_passes(rtol)
    for _ in range(max_restarts):
        r = b - A(x) if x.any() else b.copy()
        beta = np.linalg.norm(r, axis=0)
        if np.all(beta <= rtol * norms):
            break
        V, H, g = _arnoldi(A, precondition, r, beta, rtol * norms, restart, passes)
        y = basis_coefficients(H, g).astype(b.dtype, copy=False)
        x += precondition(np.einsum("cjn,jc->nc", V[:, : len(y)], y))
    return x


def gram_schmidt_passes(rtol: float) -> int:
    """Classical Gram-Schmidt passes a GMRES step takes: one pass loses orthogonality of about
    eps / rtol^2, harmless to a solve stopped at ``ONE_PASS_RTOL`` or above; tighter solves
    (u's) take the second pass that keeps the basis orthogonal to working precision."""
    return 1 if rtol >= ONE_PASS_RTOL else 2


def basis_coefficients(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Each column's least-squares coefficients of its Krylov basis, (steps, columns), from
    the rotated (triangular) Hessenberg matrices H and right sides g, up to a breakdown."""
    c, steps = H.shape[0], H.shape[2]
    y = np.zeros((steps, c))
    for k in range(c):
        diagonal = np.diagonal(H[k])[:steps]
        used = steps if diagonal.all() else int(np.argmin(diagonal != 0))
        y[:used, k] = scipy.linalg.solve_triangular(H[k][:used, :used], g[k][:used])
    return y


def _arnoldi(A, precondition, r, beta, targets, restart: int, passes: int):
    """The Krylov basis of the preconditioned operator from r, column by column (``passes`` of
    classical Gram-Schmidt), with the Givens rotations applied to the Hessenberg matrices
    (triangular) and to beta e_1 (g)."""
    n, c = r.shape
    V = np.zeros((c, restart + 1, n), r.dtype)  # each column's basis contiguous, for BLAS
    V[:, 0] = (r / np.where(beta > 0, beta, 1.0)).T
    H = np.zeros((c, restart + 1, restart))
    g = np.zeros((c, restart + 1))
    g[:, 0] = beta
    rotations = np.zeros((c, restart, 2))
    for j in range(restart):
        w = np.ascontiguousarray(A(precondition(np.ascontiguousarray(V[:, j].T))).T)
        for k in range(c):
            basis = V[k, : j + 1]
            for _ in range(passes):
                h = basis @ w[k]
                w[k] -= h @ basis
                H[k, : j + 1, j] += h
        size = np.linalg.norm(w, axis=1)
        H[:, j + 1, j] = size
        V[:, j + 1] = w / np.where(size > 0, size, 1)[:, None]
        for k in range(c):
            rotate(H[k], g[k], rotations[k], j)
        if np.all(np.abs(g[:, j + 1]) <= targets):
            return V, H[:, : j + 2, : j + 1], g
    return V, H, g


def rotate(H: np.ndarray, g: np.ndarray, rotations: np.ndarray, j: int) -> None:
    """Applies the earlier Givens rotations to H's column j, then the one that zeroes H[j+1, j]."""
    for i in range(j):
        cos, sin = rotations[i]
        H[i, j], H[i + 1, j] = cos * H[i, j] + sin * H[i + 1, j], -sin * H[i, j] + cos * H[i + 1, j]
    radius = np.hypot(H[j, j], H[j + 1, j])
    cos, sin = (H[j, j] / radius, H[j + 1, j] / radius) if radius > 0 else (1.0, 0.0)
    rotations[j] = cos, sin
    H[j, j], H[j + 1, j] = radius, 0.0
    g[j], g[j + 1] = cos * g[j], -sin * g[j]


def mutual_weight(B, BT) -> float:
    """The largest w_ij w_ji over pairs of points (B = I - W, BT its transpose): near 1, two
    points reconstruct each other almost alone and their rows of B are nearly singular, which
    is what stalls the cycle (docs/design/eigen.md)."""
    both = sp.csr_array(sp.csr_array(B).multiply(BT)).tocsr()  # w_ij w_ji off the diagonal
    both.setdiag(0.0)
    return float(both.max()) if both.nnz else 0.0


def warn_fallback(null_residual: float, mutual: float | None = None, stacklevel: int = 2):
    """The warning of a solve that falls back to the cycle for M: u's residual and, where
    known, the largest w_ij * w_ji (its usual cause)."""
    from ..exceptions import FallbackWarning

    largest = f"; the largest w_ij * w_ji is {mutual:.3f}" if mutual is not None else ""
    warnings.warn(
        "amg: GMRES with the cycle for I - W did not converge on this graph (the null "
        f"vector of (I - W)^T has residual {null_residual:.1e} > {CONVERGED_NULL:.0e}{largest}:"
        " pairs of points that reconstruct each other almost alone make I - W nearly singular,"
        " and a larger reg spreads their weights); the solve is preconditioned by the cycle for"
        " M instead (more iterations).",
        FallbackWarning,
        stacklevel=stacklevel + 1,
    )


class InverseOfM:
    """Z ~ M^+ R for blocks R, through B^+ (B^T)^+ (see the module's docstring), in float64 (the
    singular solves need its accuracy); the columns are solved in groups whose Krylov bases fit
    ``eigen.inverse-basis-bytes``."""

    RESTART = 40

    def __init__(self, B, graph, rng, BT=None):
        self.cycle = CycleForB(B, graph, rng, BT=BT)
        self.B, self.BT = self.cycle.B, self.cycle.BT
        self.rtol = config.get("eigen.inverse-tol")
        per_column = (self.RESTART + 1) * B.shape[0] * 8
        self.group = max(1, config.get_bytes("eigen.inverse-basis-bytes") // per_column)
        self.left_null = self._left_null(rng)
        # u's own residual tells whether the cycle lets GMRES converge on this graph
        self.null_residual = float(np.linalg.norm(self.BT @ self.left_null))

    @property
    def converges(self) -> bool:
        return self.null_residual <= CONVERGED_NULL

    def _solve(self, b: np.ndarray, transpose: bool, rtol: float, restarts: int = 4):
        A = self.BT if transpose else self.B
        out = np.empty_like(b)
        for start in range(0, b.shape[1], self.group):
            columns = slice(start, start + self.group)
            out[:, columns] = gmres(
                lambda X: A @ X, lambda X: self.cycle(X, transpose), b[:, columns], rtol,
                restart=self.RESTART, max_restarts=restarts,
            )  # fmt: skip
        return out

    def _left_null(self, rng) -> np.ndarray:
        """u with B^T u = 0 (B's range is orthogonal to it): a random start corrected by a
        consistent solve, B^T d = -B^T start (GMRES on a system without a solution, as in
        inverse iteration, does not find u reliably)."""
        start = rng.standard_normal((self.B.shape[0], 1))
        u = start + self._solve(-(self.BT @ start), True, NULL_RTOL, restarts=10)
        return u / np.linalg.norm(u)

    def __call__(self, R: np.ndarray) -> np.ndarray:
        r = R - R.mean(axis=0)  # B^T y = r needs r orthogonal to 1
        y = self._solve(r, True, self.rtol)
        y -= self.left_null @ (self.left_null.T @ y)  # and B z = y needs y orthogonal to u
        z = self._solve(y, False, self.rtol)
        return z - z.mean(axis=0)
