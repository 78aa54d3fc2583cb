"""dasklle's block LOBPCG, the iteration of the ``"amg"`` solver.

Rayleigh-Ritz on [X, preconditioned residuals, previous directions], with the constraint (the
constant vector) held out, the products with A recomputed rather than carried, and its n-row
arrays in buffers reused across iterations; the measurements behind these choices are in
docs/design/eigen.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg


def _orthonormal_basis(S: np.ndarray) -> np.ndarray:
    """C with S @ C an orthonormal basis of span(S), dropping near-dependent directions."""
    return basis_from_gram(S.T @ S)


def basis_from_gram(gram: np.ndarray) -> np.ndarray:
    """C with S @ C orthonormal for the S whose Gram matrix S^T S this is."""
    scale = np.sqrt(np.maximum(np.diag(gram), np.finfo(float).tiny))
    values, vectors = np.linalg.eigh(gram / np.outer(scale, scale))
    keep = values > 1e-12 * values.max()
    return vectors[:, keep] / np.sqrt(values[keep]) / scale[:, None]


def _orthonormal(S: np.ndarray) -> np.ndarray:
    """An orthonormal basis of span(S), dropping near-dependent directions."""
    return S @ _orthonormal_basis(S)


@dataclass
class LobpcgResult:
    """The Ritz pairs LOBPCG ended with, the iterations it ran and its last error bound."""

    values: np.ndarray
    vectors: np.ndarray
    n_iter: int
    bound: float = float("inf")


STALL_ITERATIONS = 10  # the fewest iterations without progress that make a stall


class Stall:
    """Tells when the subspace bound has stopped falling: its lowest value is older than
    STALL_ITERATIONS iterations, or than an eighth of all so far if more. A falling bound,
    however slowly, sets a new lowest value every few iterations; one on the floor that
    rounding in the residuals sets, below which no tol can be met, only ever more rarely."""

    def __init__(self):
        self.bounds: list[float] = []

    def __call__(self, bound: float) -> bool:
        self.bounds.append(bound)
        lowest_at = int(np.argmin(self.bounds))  # the first of equal lowest values
        age = len(self.bounds) - 1 - lowest_at
        patience = max(STALL_ITERATIONS, len(self.bounds) // 8)
        return bool(np.isfinite(self.bounds[lowest_at])) and age >= patience


def subspace_bound(values: np.ndarray, residuals: np.ndarray, n_wanted: int) -> float:
    """A bound on the sine of the angle between the span of the n_wanted lowest Ritz vectors
    and the exact eigenvectors': |R|_F / gap (the Davis-Kahan sin-theta theorem).

    The gap runs from the highest wanted Ritz value to the lowest unwanted eigenvalue, which is
    estimated from below as the next Ritz value less its residual (inf without a next pair or
    a positive gap).
    """
    if len(values) <= n_wanted:
        return float("inf")
    gap = values[n_wanted] - residuals[n_wanted] - values[n_wanted - 1]
    if not gap > 0:
        return float("inf")
    return float(np.linalg.norm(residuals[:n_wanted]) / gap)


def lobpcg(
    A, X, precondition, constraint, *, n_wanted, tol, max_iter, on_iteration=None, first_iteration=0
):
    """The smallest eigenpairs of symmetric A on the orthogonal complement of ``constraint``:
    all ``block`` Ritz pairs, ascending, when the span of the n_wanted lowest is within a sine
    of tol of the exact one (``subspace_bound``), at max_iter, or when the bound has stopped
    falling (``Stall``; tol = 0 runs max_iter iterations).

    The wanted eigenvalues are 1e-7..1e-5 of M's norm, so rounding that is harmless elsewhere
    is not here: A times the new directions is computed afresh every iteration (carrying it
    through the orthonormalising transforms let the residuals drift until the iteration
    stalled), and the Rayleigh-Ritz step uses the basis' own Gram matrix rather than assume
    it is exactly orthonormal.

    Parameters
    ----------
    A : symmetric operator supporting ``A @ block``
    X : (n, block) starting block
    precondition : callable applied to the block of residuals, or None
    constraint : (n, c) orthonormal columns the iteration stays orthogonal to
    n_wanted : how many of the lowest Ritz vectors must converge (fewer than the block's)
    tol : the largest ``subspace_bound`` accepted for them
    max_iter : iteration cap
    on_iteration : called as on_iteration(n_iter, bound, X, theta) once per iteration, X the
        current Ritz vectors (a buffer the iteration overwrites) and theta their values
    first_iteration : iterations already made before X (a resumed solve counts on from there)
    """
    block = X.shape[1]

    def deflate(V):
        V -= constraint @ (constraint.T @ V)
        return V

    X = _orthonormal(deflate(np.array(X, dtype=np.float64)))
    AX = A @ X
    theta, U = np.linalg.eigh(X.T @ AX)
    X, AX = X @ U, AX @ U
    # The n-row arrays live in buffers reused by every iteration: from 1,000,000 rows on, each
    # is above glibc's largest mmap threshold (32 MB), and a new one is page-faulted in each time.
    # The basis holds [X, S, P]: the residuals are formed in S's place and the next directions
    # in P's, and its columns are transformed in place, a slab of rows at a time.
    n = X.shape[0]
    basis = np.empty((n, 3 * block))
    R = basis[:, block : 2 * block]
    n_P = 0  # columns of P in use (none before the first step and after a restart)
    n_iter, stalled = first_iteration, Stall()
    while True:
        np.multiply(X, theta, out=R)
        np.subtract(AX, R, out=R)
        bound = subspace_bound(theta, np.linalg.norm(R, axis=0), n_wanted)
        if on_iteration is not None:
            on_iteration(n_iter, bound, X, theta)
        if bound <= tol or n_iter >= max_iter or (tol > 0 and stalled(bound)):
            break
        n_iter += 1
        width = block + n_P
        basis[:, :block] = X
        R[:] = deflate(precondition(R) if precondition is not None else R.copy())
        for _ in range(2):  # once is not enough near convergence, when S is almost in span X
            S = basis[:, block : block + width]
            _subtract_projection(S, X)
            C = _orthonormal_basis(S)
            width = C.shape[1]
            _times_into(S, C, basis[:, block : block + width])
        S = basis[:, block : block + width]
        used = basis[:, : block + width]
        gram_A = _projected(A, used, X, AX)
        gram = used.T @ used
        try:
            theta, U = scipy.linalg.eigh(
                (gram_A + gram_A.T) / 2, (gram + gram.T) / 2, subset_by_index=(0, block - 1)
            )
        except np.linalg.LinAlgError:  # basis numerically dependent: restart without P
            n_P = 0
            continue
        np.matmul(used, U, out=X)
        AX[:] = A @ X  # afresh: no n-row block of A times the basis is kept
        n_P = block
        _times_into(S, U[block:], basis[:, 2 * block :])
    return LobpcgResult(theta, X, n_iter, bound)


def _projected(A, used: np.ndarray, X: np.ndarray, AX: np.ndarray) -> np.ndarray:
    """used^T A used for the basis used = [X, S]: A S a block of columns at a time, each
    dropped once its columns of the product are formed (A's symmetry gives S^T A X)."""
    block, total = X.shape[1], used.shape[1]
    gram_A = np.empty((total, total))
    gram_A[:block, :block] = X.T @ AX
    for first in range(block, total, block):
        last = min(first + block, total)
        gram_A[:, first:last] = used.T @ (A @ used[:, first:last])
    gram_A[block:, :block] = gram_A[:block, block:].T
    return gram_A


SLAB_BYTES = 4 * 2**20  # rows of the basis transformed at a time


def _slabs(n: int, columns: int) -> list[slice]:
    step = max(1, SLAB_BYTES // (8 * max(1, columns)))
    return [slice(start, start + step) for start in range(0, n, step)]


def _subtract_projection(S: np.ndarray, X: np.ndarray) -> None:
    """S -= X (X^T S) in place (X orthonormal), without an n-row temporary."""
    coefficients = X.T @ S
    for rows in _slabs(S.shape[0], S.shape[1]):
        S[rows] -= X[rows] @ coefficients


def _times_into(S: np.ndarray, C: np.ndarray, out: np.ndarray) -> None:
    """out = S @ C a slab of rows at a time, so that out may share columns with S (each slab of
    S is read before its rows of out are written)."""
    for rows in _slabs(S.shape[0], S.shape[1]):
        out[rows] = S[rows] @ C
