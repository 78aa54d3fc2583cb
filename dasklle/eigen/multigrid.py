"""The ``"amg"`` eigen solver: LOBPCG with a block multigrid preconditioner.

The bottom eigenvectors of M = (I-W)^T (I-W) are found by LOBPCG with the constant vector held
out as a hard constraint, preconditioned by one V-cycle of smoothed-aggregation multigrid on
M + shift * I. What makes it fast, each measured on 20,000 digits-784 points (k = 10) against
scipy's ``lobpcg`` preconditioned by pyamg's ``aspreconditioner`` (58-75 s):

- one V-cycle runs on the whole block of residuals with sparse matrix-matrix products; pyamg's
  preconditioner solves one column at a time in Python (0.54 s per block of 10 against 0.04 s);
- the aggregates come from the symmetrised kNN graph, not from M's pattern: M couples the
  neighbors of neighbors, and pyamg's strength measure on it makes aggregates of about 130
  points (20,000 -> 150 unknowns), which leave the low modes to the smoother; aggregating over
  the kNN graph gives aggregates of about k points and 3x fewer iterations;
- the aggregates are not smoothed (plain aggregation, P = the 0/1 aggregate map): smoothing P
  with M spreads each aggregate over M's neighbors-of-neighbors, and the Galerkin product then
  couples every aggregate with ~1,800 others. Measured (the same load for both; to tol = 1e-6):
  20,000 points 3.3 s / 51 iterations smoothed against 2.9 s / 67 plain; 100,000 points
  71 s / 105 against 54 s / 125, hierarchy built in 8.8 s and +532 MB against 0.3 s and +66 MB,
  coarse level 1,803 against 124 nonzeros a row; 1,000,000 points 13.2 s against 6 s an
  iteration, and the client's peak 8.1 GB (pyamg building the smoothed hierarchy) against 2.7 GB;
- the smoother is a degree-4 Chebyshev polynomial in D^-1 A (Jacobi: 2-3x more iterations);
- the coarsest level (up to COARSEST_ROWS unknowns) is solved exactly by a dense Cholesky factor;
- the preconditioner runs in float32 (the iteration count did not change), LOBPCG in float64;
- for the standard method the products with M go through I - W (``assemble.CostOperator``:
  11 nonzeros a row instead of M's 64), on the finest level of the cycle and in LOBPCG; M is
  formed once, for pyamg to build the hierarchy. At 100,000 points: 73 s -> 50 s, the same
  iterations and residual (tests/test_eigen.py checks both forms against LAPACK);
- rows are put in reverse Cuthill-McKee order: the products with M read memory in order (3x
  faster products at 70,000 rows);
- BLAS runs one thread: the dense work is on n x 30 blocks, and two threads on a busy 2-core
  machine made it 3x slower (at 1,000,000 rows two threads gave 3.31 s an iteration against
  3.43 s, within this machine's noise);
- from 200,000 rows on (``assemble.ROW_KERNEL_MIN_ROWS``), the products with B and B^T run in
  dasklle's row-parallel kernels (``_rowkernels``: numba, the rows split between threads, the
  result independent of their number) and each Chebyshev step's vector updates are done in the
  pass of its product, and LOBPCG keeps its n-row arrays in buffers reused across iterations
  (at every size). At 1,000,000 digits-784 points (stored weights, 20 iterations, the same
  residuals to the last digit): 5.06 s an iteration with scipy's products and fresh arrays,
  4.57 s with the kernels, 3.69 s with the buffers as well. The kernels prefetch the rows they
  will read a few rows ahead, which takes the V-cycle from 2.55 to 1.86 s at 1,000,000 points
  (little change at 100,000 with the kernels forced on, where the vectors fit in cache).

Result: 2.5 s instead of 58-75 s at 20,000 points for a subspace within sine 1e-2 of the exact
one; about 4 s to the default residual 1e-6 (sine 1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import reverse_cuthill_mckee
from threadpoolctl import threadpool_limits

from .cost import CostOperator, chebyshev_step, compact_csr

# The hierarchy is built on M + SHIFT_FRACTION * mean(diag M) * I (M itself is singular); the
# iteration counts did not change for shifts between 1e-9 and 1e-5 of the diagonal.
SHIFT_FRACTION = 1e-5
# Coarsest level solved exactly (dense Cholesky: 3,000 unknowns factor in 0.2 s, 72 MB).
COARSEST_ROWS = 3000
CHEBYSHEV_DEGREE = 4
# Plain aggregation (see the module's docstring for the measurements against smoothed).
SMOOTH_PROLONGATOR = False
# The smoother damps the part of D^-1 A's spectrum in [rho / CHEBYSHEV_SPAN, 1.1 rho]
# (rho / 10 and rho / 100 were measured and converge no faster).
CHEBYSHEV_SPAN = 30.0


def knn_graph(neighbors: np.ndarray, n: int) -> sp.csr_array:
    """The symmetrised 0/1 adjacency of a kNN graph, without its diagonal."""
    k = neighbors.shape[1]
    rows = np.repeat(np.arange(n), k)
    graph = sp.csr_array((np.ones(n * k), (rows, np.asarray(neighbors).ravel())), shape=(n, n))
    graph = (graph + graph.T).tocsr()
    graph.setdiag(0)
    graph.eliminate_zeros()
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
    underestimated: 15 power steps gave 4.10 and 4.33 for a true 4.595 (70,000 digits), and
    the smoother then diverged on the top modes and LOBPCG stalled. Lanczos is within 1e-5.
    """
    scale = 1.0 / np.sqrt(A.diagonal().astype(np.float64))
    A64 = _compact(A, np.float64)
    operator = spla.LinearOperator(
        A.shape, matvec=lambda x: scale * (A64 @ (scale * x.ravel())), dtype=np.float64
    )
    v0 = rng.standard_normal(A.shape[0])
    return float(spla.eigsh(operator, 1, which="LA", tol=1e-4, v0=v0, return_eigenvectors=False)[0])


class BlockVCycle:
    """One symmetric V-cycle of a multigrid hierarchy, applied to a block of vectors at once.

    Pre- and post-smoothing are the same Chebyshev polynomial, so the cycle is a symmetric
    operator, as LOBPCG's preconditioner must be.
    """

    def __init__(self, operators, prolongators, rng, dtype=np.float32):
        self.dtype = dtype
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
        return [A.shape[0] for A in self.A]

    def _smooth(self, level: int, b: np.ndarray, x: np.ndarray | None) -> np.ndarray:
        """CHEBYSHEV_DEGREE steps of Chebyshev iteration on A x = b (Saad, Algorithm 12.1)."""
        A, d_inv = self.A[level], self.inverse_diagonal[level]
        high = 1.1 * self.radius[level]
        low = self.radius[level] / CHEBYSHEV_SPAN
        centre, half_width = (high + low) / 2, (high - low) / 2
        sigma = centre / half_width
        rho = 1.0 / sigma
        residual = b.copy() if x is None else b - A @ x
        step = d_inv[:, None] * residual
        step /= centre
        x = step.copy() if x is None else x + step
        for _ in range(CHEBYSHEV_DEGREE - 1):
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
        coarse = self._cycle(level + 1, self.R[level] @ (b - self.A[level] @ x))
        return self._smooth(level, b, x + self.P[level] @ coarse)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        return self._cycle(0, block.astype(self.dtype)).astype(block.dtype)


def build_preconditioner(A, graph, rng, fine=None) -> BlockVCycle:
    """Aggregation hierarchy of the SPD matrix A (prolongators smoothed only if
    SMOOTH_PROLONGATOR), aggregated over graph if given.

    ``fine``, an operator equal to A (a CostOperator), replaces A on the finest level, whose
    products are most of the cycle's work.
    """
    import pyamg

    options = dict(max_coarse=COARSEST_ROWS, keep=False)
    if not SMOOTH_PROLONGATOR:
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
    while len(operators) > 2 and operators[-2].shape[0] <= COARSEST_ROWS:
        operators.pop()
        prolongators.pop()
    if fine is not None and len(operators) > 1:
        operators[0] = fine
    return BlockVCycle(operators, prolongators, rng)


def _orthonormal_basis(S: np.ndarray) -> np.ndarray:
    """C with S @ C an orthonormal basis of span(S), dropping near-dependent directions."""
    gram = S.T @ S
    scale = np.sqrt(np.maximum(np.diag(gram), np.finfo(float).tiny))
    values, vectors = np.linalg.eigh(gram / np.outer(scale, scale))
    keep = values > 1e-12 * values.max()
    return vectors[:, keep] / np.sqrt(values[keep]) / scale[:, None]


def _orthonormal(S: np.ndarray) -> np.ndarray:
    """An orthonormal basis of span(S), dropping near-dependent directions."""
    return S @ _orthonormal_basis(S)


@dataclass
class LobpcgResult:
    values: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray  # |M v - theta v| of each returned unit vector
    n_iter: int
    converged: bool


def lobpcg(A, X, precondition, constraint, *, n_wanted, tol, max_iter, on_iteration=None):
    """The smallest eigenpairs of symmetric A on the orthogonal complement of ``constraint``.

    Block LOBPCG with Rayleigh-Ritz on [X, preconditioned residuals, previous directions]; it
    stops when the largest residual of the n_wanted lowest Ritz vectors is at most tol.

    The wanted eigenvalues are 1e-7..1e-5 of M's norm, so rounding that is harmless elsewhere
    is not here: A times the new directions is computed afresh every iteration (carrying it
    through the orthonormalising transforms let the residuals drift until the iteration
    stalled), and the Rayleigh-Ritz step uses the basis' own Gram matrix rather than assume
    it is exactly orthonormal.
    """
    block = X.shape[1]

    def deflate(V):
        return V - constraint @ (constraint.T @ V)

    X = _orthonormal(deflate(X))
    AX = A @ X
    theta, U = np.linalg.eigh(X.T @ AX)
    X, AX = X @ U, AX @ U
    # The n-row arrays live in buffers reused by every iteration: from 1,000,000 rows on, each
    # is above glibc's largest mmap threshold (32 MB), and a new one is page-faulted in each
    # time. Measured at 1,000,000 rows: the basis' copies took 606 ms and the projections
    # against X 641 ms an iteration, 91 and 297 ms when glibc was made to reuse memory
    # (MALLOC_MMAP_MAX_=0); 3.69 s an iteration in all with these buffers, against 4.57 s.
    n = X.shape[0]
    basis = np.empty((n, 3 * block))  # [X, S, P], then [X, S]: the Rayleigh-Ritz basis
    A_basis = np.empty((n, 3 * block))
    R, P, projection = np.empty((n, block)), np.empty((n, block)), np.empty((n, 2 * block))
    n_P = 0  # columns of P in use (none before the first step and after a restart)
    n_iter, converged = 0, False
    while True:
        np.multiply(X, theta, out=R)
        np.subtract(AX, R, out=R)
        residuals = np.linalg.norm(R[:, :n_wanted], axis=0)
        if on_iteration is not None:
            on_iteration(n_iter, float(residuals.max()))
        if residuals.max() <= tol:
            converged = True
            break
        if n_iter == max_iter:
            break
        n_iter += 1
        width = block + n_P
        basis[:, :block] = X
        basis[:, block : 2 * block] = deflate(precondition(R) if precondition is not None else R)
        basis[:, 2 * block : block + width] = P[:, :n_P]
        for _ in range(2):  # once is not enough near convergence, when S is almost in span X
            S = basis[:, block : block + width]
            S -= np.matmul(X, X.T @ S, out=projection[:, :width])
            C = _orthonormal_basis(S)
            width = C.shape[1]
            np.matmul(S, C, out=projection[:, :width])
            basis[:, block : block + width] = projection[:, :width]
        S = basis[:, block : block + width]
        A_basis[:, :block] = AX
        A_basis[:, block : block + width] = A @ S
        used, A_used = basis[:, : block + width], A_basis[:, : block + width]
        gram_A, gram = used.T @ A_used, used.T @ used
        try:
            theta, U = scipy.linalg.eigh(
                (gram_A + gram_A.T) / 2, (gram + gram.T) / 2, subset_by_index=(0, block - 1)
            )
        except np.linalg.LinAlgError:  # basis numerically dependent: restart without P
            n_P = 0
            continue
        np.matmul(used, U, out=X)
        np.matmul(A_used, U, out=AX)
        n_P = block
        np.matmul(S, U[block:], out=P)
    return LobpcgResult(theta, X, residuals, n_iter, converged)


def bottom_eigenvectors(
    M,
    n_components: int,
    *,
    neighbors: np.ndarray | None = None,
    start: np.ndarray | None = None,
    block: int,
    tol: float,
    max_iter: int,
    rng: np.random.Generator,
    on_iteration=None,
) -> LobpcgResult:
    """The n_components eigenpairs of M above the constant vector.

    Parameters
    ----------
    M : sparse symmetric positive semi-definite matrix with M @ 1 = 0, or a CostOperator
        (then the products never form M; the hierarchy is built from M once)
    n_components : eigenpairs wanted
    neighbors : (n, k) kNN indices that define the multigrid aggregates; without them pyamg's
        strength measure on M is used (about 3x more iterations on digits)
    start : (n, block) starting block; random if None
    block : LOBPCG block size (n_components plus a few extra vectors)
    tol : largest residual |M v - theta v| accepted for the wanted unit vectors
    max_iter : iteration cap
    rng : generator for the random start and the hierarchy's estimates
    on_iteration : called as on_iteration(n_iter, max_residual) once per iteration
    """
    n = M.shape[0]
    graph = knn_graph(neighbors, n) if neighbors is not None else None
    if graph is not None:
        pattern = graph
    else:
        pattern = M.tocsr() if isinstance(M, CostOperator) else M
    order = reverse_cuthill_mckee(sp.csr_matrix(pattern), symmetric_mode=True)
    del pattern
    if isinstance(M, CostOperator):
        M = M.permuted(order)
    else:
        M = _compact(sp.csr_array(M)[order][:, order], np.float64)
    if graph is not None:
        graph = sp.csr_array(graph)[order][:, order]
    X = rng.standard_normal((n, block)) if start is None else np.asarray(start)[order]
    with threadpool_limits(limits=1, user_api="blas"):
        shift = SHIFT_FRACTION * float(M.diagonal().mean())
        if isinstance(M, CostOperator):
            # pyamg needs the matrix to build the hierarchy; the cycle then uses the operator
            shifted = M.with_shift(shift)
            preconditioner = build_preconditioner(shifted.tocsr(), graph, rng, fine=shifted)
        else:
            shifted = (M + shift * sp.eye_array(n, format="csr")).tocsr()
            preconditioner = build_preconditioner(shifted, graph, rng)
            del shifted
        result = lobpcg(
            M,
            X,
            preconditioner,
            np.full((n, 1), 1.0 / np.sqrt(n)),
            n_wanted=n_components,
            tol=tol,
            max_iter=max_iter,
            on_iteration=on_iteration,
        )
    vectors = np.empty((n, n_components))
    vectors[order] = result.vectors[:, :n_components]
    result.vectors = vectors
    result.values = result.values[:n_components]
    result.residuals = result.residuals[:n_components]
    return result
