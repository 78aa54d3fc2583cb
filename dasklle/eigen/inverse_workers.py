"""``inverse.InverseOfM`` for the solve on the workers: the same two solves, with B and B^T,
by GMRES preconditioned by a cycle for B, with every n-row vector on the workers.

The cycle's finest level runs there (damped Jacobi sweeps through each range's rows of B or of
B^T, aggregates within the ranges); its coarse levels, P^T B P over those aggregates and below,
run in the client as ``inverse.CycleForB``. GMRES keeps its Krylov bases on the workers and
brings only the (columns x basis) inner products to the client: three waits a step (the
restriction gathered, the coarse correction scattered, one Gram-Schmidt pass), four for the
solve for u, whose tolerance needs the second pass.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as sla

from .. import config
from ..tasks import memory
from . import rowblocks
from .inverse import (
    CONVERGED_NULL,
    NULL_RTOL,
    CycleForB,
    basis_coefficients,
    gram_schmidt_passes,
    rotate,
    warn_fallback,
)
from .rowblocks import RowBlocks

SWEEPS = 2  # Jacobi sweeps before and after the coarse correction, as in this process
CANCELLED = 1e-6  # |w - V h|^2 / |w|^2 below which |w|^2 - |h|^2 has lost too many digits


class WorkerCycleForB:
    """One cycle for B (or B^T) on blocks on the workers (``problem``: a
    ``workers.WorkerProblem``, whose ranges, halos and aggregates it shares)."""

    def __init__(self, problem, setup, ids: np.ndarray, rng):
        self.problem = problem
        self.pieces = setup.linear_pieces()
        self.d_inv = problem.ranges.map(_reciprocal_diagonal, self.pieces)
        largest = self._largest_eigenvalue(rng)
        self.weights = problem.ranges.map(_scaled, self.d_inv, factor=1.0 / (1.05 * largest))
        self.coarse = CycleForB(*setup.coarse_of_B(ids), rng, coarsen=False)

    def times(self, X: RowBlocks, transpose: bool = False) -> RowBlocks:
        return self.problem.M.apply_linear(self.pieces, X, transpose)

    def _largest_eigenvalue(self, rng) -> float:
        """|lambda_max(D^-1 B)| by ARPACK (as ``inverse._damping``), its products on the
        workers."""
        n = self.problem.n

        def matvec(x):
            product = self.times(self.problem.scattered(np.reshape(x, (-1, 1))))
            return rowblocks.map_blocks(_times, product, self.d_inv).gather().ravel()

        operator = sla.LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        start = rng.standard_normal(n)
        largest = sla.eigs(operator, k=1, which="LM", v0=start, tol=1e-2)[0]
        return float(abs(largest[0]))

    def __call__(self, b: RowBlocks, transpose: bool = False) -> RowBlocks:
        problem = self.problem
        x = rowblocks.map_blocks(_times, b, self.weights)
        for _ in range(SWEEPS - 1):
            x = self._sweep(b, x, transpose)
        restricted = self.problem.M.apply_linear(
            self.pieces, x, transpose, finish=_restricted_residual,
            finish_args=(b, problem.aggregations),
        )  # fmt: skip
        restricted = problem.client.gather(restricted.futures)
        correction = self.coarse(np.vstack(restricted), transpose)
        split = np.split(correction, np.cumsum(problem.coarse_sizes)[:-1])
        split = problem.ranges.scatter(split)
        x = rowblocks.map_blocks(_plus_prolonged, x, problem.aggregations, split)
        for _ in range(SWEEPS):
            x = self._sweep(b, x, transpose)
        return x

    def _sweep(self, b: RowBlocks, x: RowBlocks, transpose: bool) -> RowBlocks:
        """x + D^-1 omega (b - A x), the update in the product's task."""
        return self.problem.M.apply_linear(
            self.pieces, x, transpose, finish=_jacobi, finish_args=(x, b, self.weights)
        )


def _reciprocal_diagonal(piece) -> np.ndarray:
    """1 / the diagonal of the range's own rows of B (their first part reads the range in
    place, so its columns are the range's rows)."""
    return 1.0 / piece[0][0].diagonal()[:, None]


def _scaled(block: np.ndarray, factor: float) -> np.ndarray:
    return block * factor


def _times(block: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return block * weights


def _minus(b: np.ndarray, product: np.ndarray) -> np.ndarray:
    return b - product


def _jacobi(product: np.ndarray, x: np.ndarray, b: np.ndarray, weights: np.ndarray):
    return x + weights * (b - product)


def _restricted_residual(product: np.ndarray, b: np.ndarray, aggregation) -> np.ndarray:
    return aggregation.T @ (b - product)


def _plus_prolonged(x: np.ndarray, aggregation, coarse: np.ndarray) -> np.ndarray:
    return x + aggregation @ coarse


# ---- GMRES on row blocks ----------------------------------------------------------------------


def _dots(blocks: list[np.ndarray]) -> np.ndarray:
    """Each column's inner products of the basis blocks with the last block, and its norm
    squared: (len(blocks), columns)."""
    w = blocks[-1]
    return np.array([np.einsum("ij,ij->j", v, w) for v in blocks])


def _orthogonalized(blocks: list[np.ndarray], h: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(w - sum_i V_i h_i) * scale, columnwise; ``blocks`` the basis, then w."""
    w = blocks[-1].copy()
    for v, coefficients in zip(blocks[:-1], h, strict=True):
        w -= v * coefficients
    return w * scale


def _combination(blocks: list[np.ndarray], y: np.ndarray) -> np.ndarray:
    out = blocks[0] * y[0]
    for v, coefficients in zip(blocks[1:], y[1:], strict=True):
        out += v * coefficients
    return out


def _pass(V: list[RowBlocks], w: RowBlocks) -> tuple[np.ndarray, np.ndarray]:
    """The basis' inner products with w (basis x columns) and w's squared norms, summed over
    the ranges in one reduction."""
    ranges = w.ranges
    summed = rowblocks.reduce_sum(ranges.client, ranges.map(_dots, rowblocks.per_range(V + [w])))
    return summed[:-1], summed[-1]


def _minus_basis(V: list[RowBlocks], w: RowBlocks, h: np.ndarray, scale) -> RowBlocks:
    futures = w.ranges.map(
        _orthogonalized, rowblocks.per_range(V + [w]), h=h, scale=np.asarray(scale)
    )
    return w.like(futures)


def gmres(A, precondition, b: RowBlocks, rtol: float, restart: int, max_restarts: int):
    """``inverse.gmres`` on row blocks: x with |b - A x| <= rtol |b| in each column, or the
    restarts spent (right-preconditioned, each column its own Krylov basis)."""
    norms = rowblocks.column_norms(b)
    passes = gram_schmidt_passes(rtol)
    x = None
    for _ in range(max_restarts):
        r = b if x is None else rowblocks.map_blocks(_minus, b, A(x))
        beta = rowblocks.column_norms(r)
        if np.all(beta <= rtol * norms):
            break
        V, H, g = _arnoldi(A, precondition, r, beta, rtol * norms, restart, passes)
        y = basis_coefficients(H, g)
        combined = V[0].like(V[0].ranges.map(_combination, rowblocks.per_range(V[: len(y)]), y=y))
        step = precondition(combined)
        x = step if x is None else rowblocks.map_blocks(np.add, x, step)
    if x is None:
        return rowblocks.map_blocks(np.zeros_like, b)
    return x


def _arnoldi(A, precondition, r: RowBlocks, beta, targets, restart: int, passes: int):
    """The Krylov bases and the Hessenberg matrices, rotated to triangular as in
    ``inverse._arnoldi``: classical Gram-Schmidt, each pass bringing |w|^2 with the inner
    products so that |w - V h|^2 = |w|^2 - |h|^2 needs no further round trip; a second pass
    where ``passes`` asks for it or where the first cancelled nearly all of w."""
    c = r.columns
    V = [rowblocks.map_blocks(_scaled, r, factor=1.0 / np.where(beta > 0, beta, 1.0))]
    H = np.zeros((c, restart + 1, restart))
    g = np.zeros((c, restart + 1))
    g[:, 0] = beta
    rotations = np.zeros((c, restart, 2))
    for j in range(restart):
        w = A(precondition(V[j]))
        h, squared = _pass(V, w)
        size = _remaining(squared, h)
        H[:, : j + 1, j] = h.T
        if passes > 1 or np.any(size**2 < CANCELLED * squared):
            w = _minus_basis(V, w, h, np.ones(c))
            h, squared = _pass(V, w)
            size = _remaining(squared, h)
            H[:, : j + 1, j] += h.T
        H[:, j + 1, j] = size
        V.append(_minus_basis(V, w, h, 1.0 / np.where(size > 0, size, 1.0)))
        for k in range(c):
            rotate(H[k], g[k], rotations[k], j)
        if np.all(np.abs(g[:, j + 1]) <= targets):
            return V, H[:, : j + 2, : j + 1], g
    return V, H, g


def _remaining(squared: np.ndarray, h: np.ndarray) -> np.ndarray:
    """|w - V h| from |w|^2 and V's orthonormality, columnwise."""
    return np.sqrt(np.maximum(squared - np.sum(h**2, axis=0), 0.0))


# ---- M^+ through B^+ (B^T)^+ ------------------------------------------------------------------


def _columns(block: np.ndarray, start: int, stop: int) -> np.ndarray:
    return block[:, start:stop]


def _side_by_side(*blocks: np.ndarray) -> np.ndarray:
    return np.hstack(blocks)


def columns_together(ranges, basis_vectors: int) -> int:
    """How many columns of a solve the workers take at once: as many Krylov bases as fit
    ``eigen.inverse-basis-bytes`` on a worker, or, if more, as fit what each range's task
    budget leaves beyond its rows (ranges are sized by ``workers.RANGE_BYTES_PER_ROW``, and
    large workers hold them with room to spare). Fewer groups mean fewer round trips."""
    from .workers import RANGE_BYTES_PER_ROW

    rows = np.diff(ranges.bounds)
    on_a_worker = max(sum(rows[p] for p in held) for _, held in ranges.by_worker())
    fixed = config.get_bytes("eigen.inverse-basis-bytes") // (basis_vectors * 8 * on_a_worker)
    spare = memory.task_bytes() - rows.max() * RANGE_BYTES_PER_ROW
    budgeted = spare // (basis_vectors * 8 * rows.max())
    return max(1, int(fixed), int(budgeted))


class WorkerInverse:
    """Z ~ M^+ R for row blocks R, as ``inverse.InverseOfM``; the columns are solved in
    groups whose Krylov bases fit on each worker (``columns_together``)."""

    RESTART = 40

    def __init__(self, problem, setup, ids: np.ndarray, rng):
        self.problem = problem
        self.cycle = WorkerCycleForB(problem, setup, ids, rng)
        self.rtol = config.get("eigen.inverse-tol")
        self.group = columns_together(problem.ranges, self.RESTART + 1)
        self.left_null = self._left_null(rng)
        residual = self.cycle.times(self.left_null, transpose=True)
        self.null_residual = float(rowblocks.column_norms(residual)[0])

    def _solve(self, b: RowBlocks, transpose: bool, rtol: float, restarts: int = 4) -> RowBlocks:
        def solved(part):
            return gmres(
                lambda X: self.cycle.times(X, transpose), lambda X: self.cycle(X, transpose),
                part, rtol, restart=self.RESTART, max_restarts=restarts,
            )  # fmt: skip

        if b.columns <= self.group:
            return solved(b)
        parts = []
        for start in range(0, b.columns, self.group):
            stop = min(start + self.group, b.columns)
            part = rowblocks.map_blocks(_columns, b, start=start, stop=stop)
            parts.append(solved(RowBlocks(b.ranges, part.futures, stop - start)))
        futures = b.ranges.map(_side_by_side, *[part.futures for part in parts])
        return b.like(futures)

    def _left_null(self, rng) -> RowBlocks:
        """u with B^T u = 0: a random start corrected by a consistent solve (as in this
        process)."""
        from .workers import RandomStart

        start = self.problem.start(RandomStart(1, int(rng.integers(2**31 - 1))))
        product = self.cycle.times(start, transpose=True)
        d = self._solve(rowblocks.map_blocks(np.negative, product), True, NULL_RTOL, restarts=10)
        u = rowblocks.map_blocks(np.add, start, d)
        norm = rowblocks.column_norms(u)[0]
        return rowblocks.map_blocks(_scaled, u, factor=1.0 / norm)

    def __call__(self, R: RowBlocks) -> RowBlocks:
        r = self.problem.deflated(R)  # B^T y = r needs r orthogonal to 1
        y = self._solve(r, True, self.rtol)
        along = rowblocks.gram(self.left_null, y)  # and B z = y needs y orthogonal to u
        y = rowblocks.minus_times(y, self.left_null, along)
        return self.problem.deflated(self._solve(y, False, self.rtol))


def built(problem, setup, ids: np.ndarray, rng) -> WorkerInverse | None:
    """The inverse on the workers, or None with a warning where its cycle does not converge
    on this graph (u's residual, as in this process)."""
    solves = WorkerInverse(problem, setup, ids, rng)
    if solves.null_residual <= CONVERGED_NULL:
        return solves
    warn_fallback(solves.null_residual, stacklevel=4)
    return None
