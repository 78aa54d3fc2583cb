"""The ``"amg"`` solver's preconditioner: one block V-cycle of aggregation multigrid.

The aggregates come from the symmetrised kNN graph rather than from M's pattern (M couples
neighbors of neighbors, and pyamg's strength measure on it makes aggregates too large to leave
the low modes to anything but the smoother); the prolongators are plain aggregation by default
(``eigen.smooth-prolongator``: smoothing them spreads each aggregate over M's pattern and makes
the coarse levels dense); the smoother is a Chebyshev polynomial in D^-1 A; the coarsest level
is solved by a dense Cholesky factor; the cycle runs in float32 on a whole block of vectors at
once. The measurements behind each choice: docs/design/eigen.md.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .. import config
from .cost import CostOperator, chebyshev_step, compact_csr


def knn_graph(neighbors: np.ndarray, n: int) -> sp.csr_array:
    """The symmetrised 0/1 adjacency of a kNN graph, without its diagonal (float32 data: only
    its pattern and edge counts are read; built from CSR, not COO, to keep its peak small)."""
    neighbors = np.asarray(neighbors)
    keep = neighbors != np.arange(n)[:, None]
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    index = np.int32 if indptr[-1] < 2**31 else np.int64  # 32-bit indices halve the graph
    directed = sp.csr_array(
        (np.ones(int(indptr[-1]), dtype=np.float32), neighbors[keep].astype(index),
         indptr.astype(index)),
        shape=(n, n),
    )  # fmt: skip
    return symmetrised(directed)


def symmetrised(directed: sp.csr_array) -> sp.csr_array:
    """The 0/1 graph with an edge wherever ``directed`` has one either way."""
    graph = (directed + directed.T).tocsr()
    graph.data[:] = 1.0
    return graph


def _compact(A, dtype):
    """A as CSR with 32-bit indices (faster products) in dtype; an operator in dtype."""
    if isinstance(A, CostOperator):
        return A.astype(dtype)
    return compact_csr(A, dtype)


def _spectral_radius(A, rng) -> float:
    """The largest eigenvalue of D^-1 A (the same as of D^-1/2 A D^-1/2), by Lanczos.

    The Chebyshev smoother amplifies whatever lies above its interval, so this must not be
    underestimated: a few power steps do, and the smoother then diverges on the top modes.
    """
    A64 = _compact(A, np.float64)
    return spectral_radius(A.diagonal(), lambda x: A64 @ x, rng)


def spectral_radius(diagonal: np.ndarray, times, rng) -> float:
    """The largest eigenvalue of D^-1 A, D = diag(diagonal), A given by ``times(x)`` = A x."""
    scale = 1.0 / np.sqrt(diagonal.astype(np.float64))
    n = len(scale)
    operator = spla.LinearOperator(
        (n, n), matvec=lambda x: scale * times(scale * x.ravel()), dtype=np.float64
    )
    v0 = rng.standard_normal(n)
    # 10 Lanczos vectors rather than ARPACK's 20: the same tolerance, half the n-vectors held
    top = spla.eigsh(operator, 1, which="LA", tol=1e-4, v0=v0, ncv=10, return_eigenvectors=False)
    return float(top[0])


class BlockVCycle:
    """One symmetric V-cycle of a multigrid hierarchy, applied to a block of vectors at once.

    Pre- and post-smoothing are the same Chebyshev polynomial, so the cycle is a symmetric
    operator, as LOBPCG's preconditioner must be. Its degree and interval are read from
    ``eigen.chebyshev-degree`` and ``eigen.chebyshev-span`` when the cycle is built.

    Parameters
    ----------
    operators : the level matrices, finest first (the finest may be a CostOperator)
    prolongators : the maps from each level to the one above it
    rng : numpy Generator for the spectral radius estimates
    dtype : the precision the cycle runs in
    """

    def __init__(self, operators, prolongators, rng, dtype=np.float32):
        self.dtype = dtype
        self.degree = int(config.get("eigen.chebyshev-degree"))
        self.span = float(config.get("eigen.chebyshev-span"))
        self.krylov = config.get("eigen.cycle") == "k"
        self.krylov_threshold = 0.25
        self.A = [_compact(A, dtype) for A in operators]
        self.P = [_compact(P, dtype) for P in prolongators]
        self.R = [_compact(P.T, dtype) for P in prolongators]
        self.inverse_diagonal = [(1.0 / A.diagonal()).astype(dtype) for A in self.A[:-1]]
        self.radius = [_spectral_radius(A, rng) for A in self.A[:-1]]
        coarsest = self.A[-1].toarray().astype(np.float64)
        coarsest = (coarsest + coarsest.T) / 2
        try:
            self._factor = scipy.linalg.cho_factor(coarsest, lower=True)
            self._pseudo_inverse = None
        except np.linalg.LinAlgError:  # singular to working precision: solve in least squares
            values, vectors = np.linalg.eigh(coarsest)
            keep = values > 1e-12 * values.max()
            inverse = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
            self._pseudo_inverse = ((vectors * inverse) @ vectors.T).astype(dtype)

    @property
    def sizes(self) -> list[int]:
        """Unknowns on each level, finest first."""
        return [A.shape[0] for A in self.A]

    def _smooth(self, level: int, b: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        """``degree`` steps of Chebyshev iteration on A x = b (Saad, Algorithm 12.1)."""
        A, d_inv = self.A[level], self.inverse_diagonal[level]
        high = 1.1 * self.radius[level]
        low = self.radius[level] / self.span
        centre, half_width = (high + low) / 2, (high - low) / 2
        sigma = centre / half_width
        rho = 1.0 / sigma
        residual = b.copy() if x is None else b - A @ x
        step = d_inv[:, None] * residual
        step /= centre
        x = step.copy() if x is None else x + step
        for _ in range(self.degree - 1):
            rho_next = 1.0 / (2.0 * sigma - rho)
            scale = 2.0 * rho_next / half_width
            chebyshev_step(A, step, residual, x, d_inv, rho_next * rho, scale)
            rho = rho_next
        return x

    def _solve_coarsest(self, b: np.ndarray) -> np.ndarray:
        if self._pseudo_inverse is not None:
            return self._pseudo_inverse @ b
        return scipy.linalg.cho_solve(self._factor, b.astype(np.float64)).astype(self.dtype)

    def _cycle(self, level: int, b: np.ndarray) -> np.ndarray:
        if level == len(self.A) - 1:
            return self._solve_coarsest(b)
        x = self._smooth(level, b, None)
        coarse_b = self.R[level] @ (b - self.A[level] @ x)
        if self.krylov and level + 2 < len(self.A):
            coarse = self._krylov_correction(level + 1, coarse_b)
        else:
            coarse = self._cycle(level + 1, coarse_b)
        return self._smooth(level, b, x + self.P[level] @ coarse)

    def _krylov_correction(self, level: int, b: np.ndarray) -> np.ndarray:
        """The K-cycle's coarse correction: up to two steps of flexible CG on A x = b, column by
        column, preconditioned by the cycle of this level (Notay & Vassilevski 2008).

        Plain aggregation loses accuracy on every level it adds; minimising over the cycle's own
        corrections brings the cycle close to an exact solve on this level (docs/design/eigen.md).
        """
        A = self.A[level]
        c1 = self._cycle(level, b)
        v1 = A @ c1
        rho1 = _column_dots(c1, v1)
        rho1 = np.where(rho1 > 0, rho1, np.inf)  # a zero column: no correction
        alpha1 = _finite(_column_dots(c1, b) / rho1)
        remainder = b - alpha1.astype(b.dtype) * v1
        # a second step unless the first left every column nearly solved
        if np.all(_column_norms(remainder) <= self.krylov_threshold * _column_norms(b)):
            return alpha1.astype(c1.dtype) * c1
        c2 = self._cycle(level, remainder)
        v2 = A @ c2
        gamma = _column_dots(c2, v1)
        alpha2 = _column_dots(c2, remainder)
        rho2 = _column_dots(c2, v2) - gamma**2 / rho1
        rho2 = np.where(rho2 > 0, rho2, np.inf)  # c2 in span c1: no second step
        # float64 coefficients, each ratio formed on its own: in float32, rho1 * rho2 of nearly
        # solved columns underflowed to 0 and 0 / 0 put NaN in the block
        first = _finite(alpha1 - (gamma / rho1) * (alpha2 / rho2))
        return first.astype(c1.dtype) * c1 + _finite(alpha2 / rho2).astype(c2.dtype) * c2

    def __call__(self, block: np.ndarray) -> np.ndarray:
        out = self._cycle(0, block.astype(self.dtype)).astype(block.dtype)
        broken = ~np.isfinite(out).all(axis=0)
        if broken.any():  # a column the cycle could not correct is left unpreconditioned
            out[:, broken] = block[:, broken]
        return out


def _column_dots(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The dot products of matching columns, in float64 (cancellation and underflow in float32
    blocks)."""
    return np.einsum("ij,ij->j", X, Y, dtype=np.float64)


def _finite(coefficients: np.ndarray) -> np.ndarray:
    """Coefficients of a correction; 0 (no correction) where one is not finite."""
    return np.where(np.isfinite(coefficients), coefficients, 0.0)


def _column_norms(X: np.ndarray) -> np.ndarray:
    return np.sqrt(_column_dots(X, X))


def build_preconditioner(A, graph, rng) -> BlockVCycle:
    """Aggregation hierarchy of the SPD matrix A, as a BlockVCycle.

    Parameters
    ----------
    A : sparse SPD matrix, or a CostOperator (B^T B + shift I), which stays the finest level
    graph : sparse adjacency the aggregates are formed over, or None for pyamg's strength
        measure on A
    rng : numpy Generator; seeds pyamg's estimates and the cycle's

    The prolongators are smoothed only if ``eigen.smooth-prolongator``; levels stop at the first
    with at most ``eigen.coarsest-rows`` unknowns. An operator with plain aggregates of a graph
    is never formed: its first coarse level is (B P)^T (B P) + shift P^T P.
    """
    smooth = config.get("eigen.smooth-prolongator")
    if not isinstance(A, CostOperator):
        return BlockVCycle(*_levels(A, graph, rng), rng)
    if smooth or graph is None or A.shape[0] <= config.get("eigen.coarsest-rows"):
        operators, prolongators = _levels(A.tocsr(), graph, rng)
        if len(operators) > 1:  # a single level is solved densely: it stays a matrix
            operators[0] = A
        return BlockVCycle(operators, prolongators, rng)
    P = aggregation(graph)
    operators, prolongators = _levels(galerkin(A.B, P, A.shift), coarse_graph(graph, P), rng)
    return BlockVCycle([A, *operators], [P, *prolongators], rng)


def _levels(A, graph, rng) -> tuple[list, list]:
    """pyamg's aggregation hierarchy of A: its level matrices and prolongators."""
    import pyamg

    coarsest_rows = config.get("eigen.coarsest-rows")
    options = dict(max_coarse=coarsest_rows, keep=False)
    if not config.get("eigen.smooth-prolongator"):
        options["smooth"] = None
    if graph is not None:
        options["strength"] = [("predefined", {"C": sp.csr_matrix(graph)})] + ["symmetric"]
    # pyamg estimates spectral radii from numpy's global generator: seed it (and restore the
    # caller's state) so that the same seed builds the same hierarchy.
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(int(rng.integers(2**31 - 1)))  # noqa: NPY002
    try:
        hierarchy = pyamg.smoothed_aggregation_solver(sp.csr_matrix(A), **options)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    operators = [level.A for level in hierarchy.levels]
    prolongators = [level.P for level in hierarchy.levels[:-1]]
    # pyamg may coarsen on to a handful of unknowns; stop at the first level small enough for
    # the dense coarse solve instead.
    while len(operators) > 2 and operators[-2].shape[0] <= coarsest_rows:
        operators.pop()
        prolongators.pop()
    return operators, prolongators


def aggregation(graph) -> sp.csr_array:
    """The 0/1 map of the graph's nodes to pyamg's standard aggregates of it, each isolated
    node (which pyamg leaves out) an aggregate of its own: every node in one, the map keeps
    the constant vector, the null vector of B and of M."""
    from pyamg.aggregation import standard_aggregation

    P = sp.csr_array(standard_aggregation(sp.csr_matrix(graph))[0], dtype=np.float64)
    alone = np.flatnonzero(np.diff(P.indptr) == 0)
    if len(alone) == 0:
        return P
    own = sp.csr_array(
        (np.ones(len(alone)), (alone, np.arange(len(alone)))), shape=(P.shape[0], len(alone))
    )
    return sp.hstack([P, own], format="csr")


def coarse_graph(graph, P) -> sp.csr_array:
    """The graph between aggregates (P^T graph P without its diagonal)."""
    coarse = (P.T @ sp.csr_array(graph) @ P).tocsr()
    coarse.setdiag(0)
    coarse.eliminate_zeros()
    return coarse


def strongest_edges(graph, k: int) -> sp.csr_array:
    """The graph with each node's k heaviest edges (ties broken by position), kept where
    either end keeps them: a graph between aggregates links each to dozens of others, and
    aggregating over all of those links merges a hundred nodes at once."""
    graph = sp.csr_array(graph).tocsr()
    rows = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))
    order = np.lexsort((-graph.data, rows))  # by row, heaviest first
    rank = np.arange(graph.nnz) - graph.indptr[rows[order]]
    kept = order[rank < k]
    heaviest = sp.csr_array(
        (graph.data[kept], (rows[kept], graph.indices[kept])), shape=graph.shape
    )
    return heaviest.maximum(heaviest.T).tocsr()


def galerkin(B, P, shift: float, chunks: int = 8) -> sp.csr_array:
    """P^T (B^T B + shift I) P, summed over row chunks of B P: never all of B P (n rows) beside
    the result, and never B^T B."""
    coarse = shift * (P.T @ P)
    bounds = np.linspace(0, B.shape[0], chunks + 1).astype(np.int64)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        part = sp.csr_array(B[start:stop] @ P)
        coarse = coarse + part.T @ part
    return sp.csr_array(coarse).tocsr()
