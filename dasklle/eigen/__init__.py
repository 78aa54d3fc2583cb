"""Stage 4: the bottom eigenvectors of M, skipping the constant one.

``dense`` (LAPACK ``eigh``) is the reference. ``arpack`` is shift-invert Lanczos about 0 (what
scikit-learn uses: a sparse LU of M). ``factored`` is the same shift-invert through a sparse LU
of I - W instead of M (standard method only; ``dasklle.factored``), far sparser and faster.
``lobpcg`` is scipy's LOBPCG with the constant vector deflated and no preconditioner; ``amg`` is
dasklle's block LOBPCG with a block multigrid preconditioner (``blockamg``), built for large
high-dimensional problems. Every run reports the largest
residual |M v - lambda v| of the returned vectors and which solver actually ran.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from sklearn.utils import check_random_state

from ..exceptions import EigenConvergenceWarning, FallbackWarning
from ..tasks import progress
from . import factored, multigrid
from .cost import CostOperator

# Extra LOBPCG block vectors beyond the wanted ones: the bottom of LLE's spectrum is bunched
# (eigenvalues 1e-13..1e-5), and a wider block converges in far fewer iterations.
LOBPCG_EXTRA_VECTORS = 8
# scipy's LOBPCG falls back to a dense solve (which refuses a deflation block) when
# n < 5 * block size; below that we run the dense reference instead.
LOBPCG_MIN_ROWS_PER_VECTOR = 5
# Largest problem on which "auto" falls back to the dense solver (an n x n float64 matrix:
# 200 MB at 5,000 rows) when ARPACK fails; above it, LOBPCG + AMG.
AUTO_DENSE_MAX_ROWS = 5000


@dataclass
class NullSpace:
    """The result of the eigen stage."""

    vectors: np.ndarray  # (n, n_components), the embedding before any rescaling
    values: np.ndarray  # (n_components,), the kept eigenvalues, ascending
    solver: str  # the solver that actually ran
    residual: float  # max_j |M v_j - lambda_j v_j| over the kept vectors
    n_iter: int | None = None


# "auto" uses ARPACK's shift-invert while its sparse factorisation stays cheap: always on
# low-dimensional data (the neighbor graph is mesh-like; 100,000 swiss-roll points factor in
# seconds), and up to ARPACK_MAX_ROWS on high-dimensional data, where the factors fill in
# (digits-784: 2e8 nonzeros and 250 s at 20,000 points) and LOBPCG + AMG takes over.
ARPACK_MAX_ROWS = 5000
LOW_DIMENSION = 15


def choose_solver(solver: str, n_samples: int, n_wanted: int, n_features: int = 0) -> str:
    """Resolve ``"auto"``: dense LAPACK up to 200 rows; ARPACK shift-invert through the LU of
    I - W (``"factored"``; ``null_space`` runs ARPACK on M where that does not apply) on
    low-dimensional data (n_features <= 15) or up to 5,000 rows; LOBPCG + AMG on large
    high-dimensional data.

    scikit-learn also runs dense when 10 or more vectors are wanted; dasklle does not, because
    asking for more eigenvalues (``n_eigenvalues``) must not turn a 20k-point job into an O(n^3)
    one.
    """
    if solver != "auto":
        return solver
    if n_samples <= 200:
        return "dense"
    if n_features <= LOW_DIMENSION or n_samples <= ARPACK_MAX_ROWS:
        return "factored"
    return "amg"


def deterministic_signs(vectors: np.ndarray) -> np.ndarray:
    """Flip each eigenvector so that its largest-magnitude entry is positive.

    An eigenvector's sign is arbitrary, and which sign a solver returns can change with round-off
    (BLAS threads, worker processes). Fixing it makes the same seed give the same embedding on
    every scheduler, as scikit-learn's spectral embedding does.
    """
    rows = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[rows, np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1.0, signs)


def residual_norms(M, vectors: np.ndarray, values: np.ndarray) -> np.ndarray:
    """|M v_j - lambda_j v_j| for unit-norm columns v_j."""
    norms = np.linalg.norm(vectors, axis=0)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    return np.linalg.norm(M @ unit - unit * values[None, :], axis=0)


def _dense(M, n_components: int, k_skip: int) -> tuple[np.ndarray, np.ndarray]:
    dense = M.toarray() if sp.issparse(M) else np.array(M, dtype=np.float64)
    values, vectors = scipy.linalg.eigh(
        dense, subset_by_index=(k_skip, n_components + k_skip - 1), overwrite_a=True
    )
    order = np.argsort(np.abs(values))
    return values[order], vectors[:, order]


def _arpack(M, n_components, k_skip, tol, max_iter, rng) -> tuple[np.ndarray, np.ndarray]:
    v0 = rng.uniform(-1, 1, M.shape[0])
    try:
        values, vectors = spla.eigsh(
            M, n_components + k_skip, sigma=0.0, tol=tol, maxiter=max_iter, v0=v0
        )
    except RuntimeError as exc:  # ArpackError, ArpackNoConvergence and singular factorisations
        raise ValueError(
            "Error in determining null-space with ARPACK. Error message: "
            f"'{exc}'. Note that eigen_solver='arpack' can fail when the weight matrix is "
            "singular or otherwise ill-behaved. In that case, eigen_solver='dense' is "
            "recommended, or eigen_solver='amg' for large problems."
        ) from exc
    order = np.argsort(values)
    return values[order][k_skip:], vectors[:, order][:, k_skip:]


def _lobpcg(M, n_components, tol, max_iter, rng, verbose: bool = False, start=None):
    n = M.shape[0]
    block = n_components + LOBPCG_EXTRA_VECTORS
    constant = np.full((n, 1), 1.0 / np.sqrt(n))
    X0 = rng.standard_normal((n, block)) if start is None else start
    iterations = progress.IterationLog("lobpcg", verbose)
    preconditioner = iterations.wrap(None, n)
    with warnings.catch_warnings():
        # Non-convergence is reported below from the measured residual, not from scipy's warning.
        warnings.simplefilter("ignore", UserWarning)
        values, vectors = spla.lobpcg(
            M,
            X0,
            M=preconditioner,
            Y=constant,
            tol=tol,
            maxiter=max_iter,
            largest=False,
        )
    order = np.argsort(values)[:n_components]
    return values[order], vectors[:, order], iterations.iterations


def _amg(M, n_components, tol, max_iter, rng, verbose, start, neighbors):
    iterations = progress.IterationLog("amg", verbose)
    result = multigrid.bottom_eigenvectors(
        M,
        n_components,
        neighbors=neighbors,
        start=start,
        block=n_components + LOBPCG_EXTRA_VECTORS,
        tol=tol,
        max_iter=max_iter,
        rng=np.random.default_rng(rng.randint(2**31 - 1)),
        on_iteration=iterations.update,
    )
    return result.values, result.vectors, result.n_iter


def null_space(
    M: sp.csr_array | np.ndarray,
    n_components: int,
    *,
    solver: str = "auto",
    tol: float = 1e-6,
    max_iter: int = 100,
    random_state=None,
    k_skip: int = 1,
    verbose: bool = False,
    n_features: int = 0,
    start=None,
    neighbors: np.ndarray | None = None,
    n_graph_components: int | None = None,
) -> NullSpace:
    """The n_components eigenvectors of M above its k_skip smallest ones.

    Parameters
    ----------
    M : symmetric positive semi-definite matrix, sparse or dense, or a CostOperator
        ((I - W)^T (I - W) applied through I - W; formed here for all solvers but amg)
    n_components : number of eigenvectors to keep
    solver : "auto", "dense", "arpack", "factored", "lobpcg" or "amg"
    tol, max_iter : passed to the iterative solvers
    random_state : seed for the solvers' starting vectors
    k_skip : number of bottom eigenvectors to discard (1: the constant vector)
    verbose : log the iterative solvers' iteration count and residual periodically
    n_features : dimension of the data, for ``"auto"``
    start : optional callable returning an (n, block) starting block for LOBPCG (``block`` =
        n_components + LOBPCG_EXTRA_VECTORS, its only argument); random vectors otherwise
    neighbors : (n, k) kNN indices behind M; ``amg`` aggregates its multigrid levels over
        this graph (without it, over M's pattern: about 3x more iterations)
    n_graph_components : connected components of the neighbor graph, if the caller has counted
        them (``factored`` needs one); counted here otherwise

    Returns
    -------
    NullSpace
    """
    n = M.shape[0]
    rng = check_random_state(random_state)
    requested = solver
    solver = choose_solver(solver, n, n_components + k_skip, n_features)
    n_iter = None
    if solver in ("lobpcg", "amg") and (
        k_skip != 1 or n < LOBPCG_MIN_ROWS_PER_VECTOR * (n_components + LOBPCG_EXTRA_VECTORS) + 2
    ):
        solver = "dense"
    if solver == "factored":
        # ARPACK through the LU of I - W where it applies and succeeds; ARPACK on M otherwise.
        if k_skip == 1 and isinstance(M, CostOperator) and M.shift == 0:
            if n_graph_components is None:
                n_graph_components = factored.graph_components(M.B)
            if n_graph_components == 1:
                result = _factored(M, n_components, tol, max_iter, rng)
                if result is not None:
                    return result
        solver = "arpack"
    if solver != "amg" and isinstance(M, CostOperator):
        M = M.tocsr()  # only amg works with the operator; the others need M itself
    if solver == "dense":
        values, vectors = _dense(M, n_components, k_skip)
    elif solver == "arpack":
        try:
            values, vectors = _arpack(M, n_components, k_skip, tol, max_iter, rng)
        except ValueError as exc:
            if requested != "auto":
                raise  # the user asked for ARPACK: say it failed, as scikit-learn does
            # "auto" may choose again: the factorisation about 0 fails when M is singular to
            # working precision (as with LTSA on some data); record what ran instead.
            solver = "dense" if n <= AUTO_DENSE_MAX_ROWS else "amg"
            warnings.warn(
                f"eigen_solver='auto': ARPACK failed ({exc.__cause__}); using {solver!r}.",
                FallbackWarning,
                stacklevel=2,
            )
            return null_space(
                M,
                n_components,
                solver=solver,
                tol=tol,
                max_iter=max_iter,
                random_state=random_state,
                k_skip=k_skip,
                verbose=verbose,
                neighbors=neighbors,
            )
    else:
        block = n_components + LOBPCG_EXTRA_VECTORS
        X0 = start(block) if start is not None else None
        if solver == "amg":
            values, vectors, n_iter = _amg(
                M, n_components, tol, max_iter, rng, verbose, X0, neighbors
            )
        else:
            values, vectors, n_iter = _lobpcg(M, n_components, tol, max_iter, rng, verbose, X0)
    return _checked(M, vectors, values, solver, tol, max_iter, n_iter)


def _factored(M: CostOperator, n_components, tol, max_iter, rng) -> NullSpace | None:
    """ARPACK through the LU of I - W (``factored``) on a connected graph; None, with a warning,
    when the factorisation or ARPACK fails or the residual ends above 10 * tol."""
    try:
        values, vectors, inverse = factored.bottom_eigenvectors(
            M.B,
            n_components,
            BT=M.BT,
            tol=tol,
            max_iter=max_iter,
            rng=np.random.default_rng(rng.randint(2**31 - 1)),
        )
        result = _checked(
            M, vectors, values, "factored", tol, max_iter, inverse.n_solves, warn=False
        )
        if result.residual > _accepted(tol):
            raise RuntimeError(f"residual {result.residual:.1e}")
    except RuntimeError as exc:  # also ArpackError and SuperLU's singular factor
        warnings.warn(
            f"ARPACK through the LU of I - W failed ({exc}); factorising M instead.",
            FallbackWarning,
            stacklevel=3,
        )
        return None
    return result


def _accepted(tol: float) -> float:
    """The largest residual accepted without a warning."""
    return max(tol, 1e-12) * 10


def _checked(M, vectors, values, solver, tol, max_iter, n_iter, warn=True) -> NullSpace:
    """The NullSpace with fixed signs and its measured residual; refuses non-finite vectors and
    warns when an iterative solver ended above 10 * tol."""
    vectors = deterministic_signs(vectors)
    residual = float(residual_norms(M, vectors, values).max())
    if not np.all(np.isfinite(vectors)):
        raise ValueError(
            f"eigen_solver={solver!r} returned non-finite eigenvectors; try eigen_solver='dense' "
            "or a larger reg."
        )
    if warn and solver != "dense" and residual > _accepted(tol):
        other = "'dense'" if solver in ("arpack", "factored") else "'arpack' or 'dense'"
        warnings.warn(
            f"eigen_solver={solver!r} did not converge in max_iter={max_iter} iterations: largest "
            f"residual |Mv - lambda v| = {residual:.2e} > 10 * tol = {10 * tol:.1e}. Increase "
            f"max_iter, or use eigen_solver={other}.",
            EigenConvergenceWarning,
            stacklevel=2,
        )
    return NullSpace(vectors, values, solver, residual, n_iter)
