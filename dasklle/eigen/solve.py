"""Which eigen solver runs, the dispatch to it, and the checks of what it returns.

``dense`` (LAPACK ``eigh``) is the reference. ``arpack`` is shift-invert Lanczos about 0 through a
sparse LU of M (scikit-learn's algorithm). ``factored`` is the same shift-invert through a sparse
LU of I - W (``factored``; standard method on a connected graph, else ``arpack``). ``lobpcg`` is
scipy's LOBPCG with the constant vector deflated and no preconditioner; ``amg`` is dasklle's block
LOBPCG preconditioned by multigrid (``amg``: solves with I - W, or a cycle for M). Every run
reports the largest residual |M v - lambda v| of the returned vectors and which solver actually
ran. Why ``"auto"`` chooses as it does: docs/design/eigen.md.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .. import config
from ..exceptions import EigenConvergenceWarning, FallbackWarning
from ..tasks import progress
from . import amg, factored
from .cost import CostOperator
from .kept import WorkerVectors
from .lobpcg import subspace_bound
from .placement import choose_placement, min_rows
from .resident import ResidentOperator


@dataclass
class NullSpace:
    """The result of the eigen stage."""

    # (n, n_components), the embedding before any rescaling; from the workers, a dask array
    # of blocks held there
    vectors: np.ndarray
    values: np.ndarray  # (n_components,), the kept eigenvalues, ascending
    solver: str  # the solver that actually ran
    residual: float  # max_j |M v_j - lambda_j v_j| over the kept vectors
    n_iter: int | None = None
    # bound on the sine between the kept subspace and the exact one (lobpcg.subspace_bound)
    error_bound: float = float("inf")
    tol: float | None = None  # the tolerance the solver ran with ("auto" resolved)
    placement: str = "client"  # where the iteration ran: "client" (this process) or "workers"
    # (m, 2): the computed pairs above the kept ones, as (eigenvalue estimate, residual); an
    # eigenvalue of M lies within the residual of each estimate
    beyond: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def choose_solver(solver: str, n_samples: int, *, n_features: int = 0) -> str:
    """Resolve ``"auto"`` to the solver that runs.

    Dense LAPACK up to ``eigen.dense-max-rows`` rows; ARPACK shift-invert through the LU of
    I - W (``"factored"``; ``null_space`` runs ARPACK on M where that does not apply) on data
    with at most ``eigen.low-dimension`` features or up to ``eigen.arpack-max-rows`` rows;
    LOBPCG + AMG on larger high-dimensional data, where the sparse factorisations fill in.

    scikit-learn also runs dense when 10 or more vectors are wanted; dasklle does not, because
    asking for more eigenvalues (``n_eigenvalues``) must not turn a 20k-point job into an O(n^3)
    one.

    Parameters
    ----------
    solver : str
        The requested solver; anything but ``"auto"`` is returned unchanged.
    n_samples : int
        Rows of M.
    n_features : int, default=0
        Dimension of the data (0: unknown, treated as low-dimensional).

    Returns
    -------
    str
    """
    if solver != "auto":
        return solver
    if n_samples <= config.get("eigen.dense-max-rows"):
        return "dense"
    if n_features <= config.get("eigen.low-dimension") or n_samples <= config.get(
        "eigen.arpack-max-rows"
    ):
        return "factored"
    return "amg"


def tolerances(solver: str, tol, max_iter) -> tuple[float, int]:
    """``tol`` and ``max_iter`` for the solver that runs, ``"auto"`` resolved.

    For ARPACK and scipy's LOBPCG, scikit-learn's 1e-6 and 100; for ``amg``, whose tol bounds
    the sine between the returned subspace and the exact one, ``eigen.amg-tol`` and
    ``eigen.amg-max-iter``.
    """
    amg = solver == "amg"
    if tol == "auto":
        tol = float(config.get("eigen.amg-tol")) if amg else 1e-6
    if max_iter == "auto":
        max_iter = int(config.get("eigen.amg-max-iter")) if amg else 100
    return float(tol), int(max_iter)


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
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=0), np.finfo(float).tiny)
    product = M.times_few(unit) if isinstance(M, CostOperator | ResidentOperator) else M @ unit
    return np.linalg.norm(product - unit * values[None, :], axis=0)


def _dense(M, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """LAPACK's eigenpairs 1..n_components + 1 and ``eigen.spectrum-extra`` more (0 is the
    constant vector's), where there are."""
    dense = M.toarray() if sp.issparse(M) else np.array(M, dtype=np.float64)
    last = min(n_components + 1 + config.get("eigen.spectrum-extra"), dense.shape[0] - 1)
    values, vectors = scipy.linalg.eigh(dense, subset_by_index=(1, last), overwrite_a=True)
    order = np.argsort(np.abs(values))
    return values[order], vectors[:, order]


def _arpack(M, n_components, tol, max_iter, rng) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's solve: shift-invert about 0 through the LU of M, with its error message."""
    v0 = rng.uniform(-1, 1, M.shape[0])
    # the constant's, the kept, the next and a few more for the spectrum
    wanted = min(n_components + 2 + config.get("eigen.spectrum-extra"), M.shape[0] - 1)
    try:
        values, vectors = spla.eigsh(M, wanted, sigma=0.0, tol=tol, maxiter=max_iter, v0=v0)
    except RuntimeError as exc:  # ArpackError, ArpackNoConvergence and singular factorisations
        raise ValueError(
            "Error in determining null-space with ARPACK. Error message: "
            f"'{exc}'. Note that eigen_solver='arpack' can fail when the weight matrix is "
            "singular or otherwise ill-behaved. In that case, eigen_solver='dense' is "
            "recommended, or eigen_solver='amg' for large problems."
        ) from exc
    order = np.argsort(values)
    return values[order][1:], vectors[:, order][:, 1:]


def _lobpcg(M, n_components, tol, max_iter, rng, verbose: bool = False):
    """scipy's LOBPCG on a random block, the constant vector held out, no preconditioner."""
    n, block = M.shape[0], n_components + config.get("eigen.lobpcg-extra-vectors")
    constant = np.full((n, 1), 1.0 / np.sqrt(n))
    X0 = rng.standard_normal((n, block))
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
    order = np.argsort(values)
    return values[order], vectors[:, order], iterations.iterations


def _amg(
    M, n_components, tol, max_iter, rng, verbose, neighbors, partial, client, n_graph_components
):
    """dasklle's block LOBPCG with the multigrid preconditioner (``amg``), resumed from the
    state ``partial`` holds and saving its state there every ``eigen.checkpoint-interval``."""
    inverse = amg.inverts(M, neighbors, n_graph_components, on_workers=client is not None)
    # an accurate preconditioner needs no wide block (the cycle for M does)
    block = n_components + config.get(f"eigen.{'inverse' if inverse else 'lobpcg'}-extra-vectors")
    iterations = progress.IterationLog("amg", verbose, "subspace error bound")
    saved = partial.load() if partial is not None else None
    first = int(saved["attributes"]["progress"]) if saved is not None else 0
    if saved is not None and verbose:
        progress.log(f"eigen: resuming the amg solve at iteration {first}")
    result = amg.bottom_eigenvectors(
        M,
        n_components,
        neighbors=neighbors,
        block=block,
        rng=np.random.default_rng(rng.randint(2**31 - 1)),
        tol=tol,
        max_iter=max_iter,
        on_iteration=iterations.update,
        start=amg.start_from(saved) if saved is not None else None,
        first_iteration=first,
        checkpoint=_Checkpointer(partial) if partial is not None else None,
        client=client,
        inverse=inverse,
    )
    return result.values, result.vectors, result.n_iter


class _Checkpointer:
    """Saves the iteration's block every ``eigen.checkpoint-interval`` seconds, and loads the
    last one saved."""

    def __init__(self, partial):
        self.partial = partial
        self.interval = float(config.get("eigen.checkpoint-interval"))
        self.last = time.monotonic()

    def __call__(self, n_iter: int, state) -> None:
        if n_iter and time.monotonic() - self.last >= self.interval:
            self.partial.save(n_iter, state())
            self.last = time.monotonic()

    def load(self) -> dict | None:
        return self.partial.load()


def null_space(
    M: sp.csr_array | np.ndarray | CostOperator,
    n_components: int,
    *,
    solver: str = "auto",
    tol: float | str = "auto",
    max_iter: int | str = "auto",
    random_state=None,
    verbose: bool = False,
    n_features: int = 0,
    neighbors: np.ndarray | None = None,
    n_graph_components: int | None = None,
    partial=None,
    lazy: bool = False,
) -> NullSpace:
    """The n_components eigenvectors of M just above its constant one.

    Parameters
    ----------
    M : symmetric positive semi-definite matrix, sparse or dense, a CostOperator
        ((I - W)^T (I - W) applied through I - W; formed here for all solvers but amg), or a
        ResidentOperator (I - W on the workers; gathered here unless amg iterates there)
    n_components : number of eigenvectors to keep
    solver : "auto", "dense", "arpack", "factored", "lobpcg" or "amg"
    tol, max_iter : the iterative solvers' tolerance and iteration cap (``tolerances``)
    random_state : seed for the solvers' starting vectors
    verbose : log the iterative solvers' iteration count and residual periodically
    n_features : dimension of the data, for ``"auto"``
    neighbors : (n, k) kNN indices behind M; ``amg`` aggregates its multigrid levels over
        this graph (without it, over M's pattern: more iterations)
    n_graph_components : connected components of the neighbor graph, if the caller has counted
        them (``factored`` needs one); counted here otherwise
    partial : optional PartialState where ``amg`` keeps its iteration's state and resumes it
    lazy : vectors from the workers left there, as a dask array (live with the client)

    Returns
    -------
    NullSpace
    """
    from sklearn.utils import check_random_state

    n = M.shape[0]
    rng = check_random_state(random_state)
    requested = solver
    solver = choose_solver(solver, n, n_features=n_features)
    n_iter = None
    solver, M, placement, client = _runnable(solver, M, n_components)
    asked = tol, max_iter
    if solver == "factored":
        tol, max_iter = tolerances(solver, *asked)
        result = _factored(M, n_components, tol, max_iter, rng, n_graph_components)
        if result is not None:
            return result
        solver = "arpack"
    tol, max_iter = tolerances(solver, *asked)
    if solver != "amg" and isinstance(M, CostOperator):
        M = M.tocsr()  # only amg works with the operator; the others need M itself
    if solver == "dense":
        values, vectors = _dense(M, n_components)
    elif solver == "arpack":
        try:
            values, vectors = _arpack(M, n_components, tol, max_iter, rng)
        except ValueError as exc:
            if requested != "auto":
                raise  # the user asked for ARPACK: say it failed, as scikit-learn does
            return _after_arpack_failed(
                exc, M, n_components, *asked, random_state, verbose, neighbors
            )
    elif solver == "amg":
        values, vectors, n_iter = _amg(
            M, n_components, tol, max_iter, rng, verbose, neighbors, partial, client,
            n_graph_components,
        )  # fmt: skip
    else:
        values, vectors, n_iter = _lobpcg(M, n_components, tol, max_iter, rng, verbose)
    result = _checked(M, vectors, values, solver, tol, max_iter, n_iter, n_components)
    if not lazy and not isinstance(result.vectors, np.ndarray):
        result.vectors = result.vectors.compute()
    result.placement = placement
    return result


def _runnable(solver: str, M, n_components: int):
    """The solver that runs, M where it runs, the placement and its client (``placement``).
    scipy's LOBPCG falls back to a dense solve (which refuses a deflation block) on small
    problems: the dense reference runs there instead. B held on the workers is gathered
    unless ``amg`` iterates there."""
    if solver in ("lobpcg", "amg") and M.shape[0] < min_rows(n_components):
        solver = "dense"
    placement, client = choose_placement(solver, M)
    if isinstance(M, ResidentOperator) and placement != "workers":
        M = M.gather()
    return solver, M, placement, client


def _after_arpack_failed(
    exc, M, n_components, tol, max_iter, random_state, verbose, neighbors
) -> NullSpace:
    """ "auto" chooses again when the factorisation about 0 fails (M singular to working
    precision, as with LTSA on some data), and records what ran instead."""
    solver = "dense" if M.shape[0] <= config.get("eigen.fallback-dense-max-rows") else "amg"
    warnings.warn(
        f"eigen_solver='auto': ARPACK failed ({exc.__cause__}); using {solver!r}.",
        FallbackWarning,
        stacklevel=3,
    )
    return null_space(
        M,
        n_components,
        solver=solver,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        verbose=verbose,
        neighbors=neighbors,
    )


def _factored(M, n_components, tol, max_iter, rng, n_graph_components) -> NullSpace | None:
    """ARPACK through the LU of I - W (``factored``); None where it does not apply (M not an
    unshifted CostOperator, a disconnected graph) and, with a warning, when the factorisation
    or ARPACK fails or the residual ends above 10 * tol."""
    if not (isinstance(M, CostOperator) and M.shift == 0):
        return None
    if n_graph_components is None:
        n_graph_components = factored.graph_components(M.B)
    if n_graph_components != 1:
        return None
    try:
        values, vectors, inverse = factored.bottom_eigenvectors(
            M.B,
            min(n_components + 1 + config.get("eigen.spectrum-extra"), M.shape[0] - 2),
            BT=M.BT,
            tol=tol,
            max_iter=max_iter,
            rng=np.random.default_rng(rng.randint(2**31 - 1)),
        )
        result = _checked(
            M, vectors, values, "factored", tol, max_iter, inverse.n_solves, n_components, False
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


def _checked(
    M, vectors, values, solver, tol, max_iter, n_iter, n_components, warn=True
) -> NullSpace:
    """The NullSpace of the n_components lowest pairs, with fixed signs, their measured residual
    and the bound on their subspace's error from the next pair; refuses non-finite vectors and
    warns when an iterative solver stopped short (``_stopped_short``)."""
    if isinstance(vectors, WorkerVectors):  # reduced where they lie; a dask array comes back
        residuals = vectors.residual_norms(values)  # NaN for a vector that is not finite
        _refuse_non_finite(residuals, solver)
        rows = int(config.get("store.chunk-rows"))
        vectors = vectors.in_row_order(vectors.signs()[:n_components], rows)
    else:
        _refuse_non_finite(vectors, solver)
        residuals = residual_norms(M, vectors, values)
        vectors = deterministic_signs(vectors[:, :n_components])
    bound = subspace_bound(values, residuals, n_components)
    beyond = np.c_[values[n_components:], residuals[n_components:]]
    values, residual = values[:n_components], float(residuals[:n_components].max())
    short = _stopped_short(solver, tol, residual, bound)
    if warn and short:
        other = "'dense'" if solver in ("arpack", "factored") else "'factored'"
        if solver == "amg" and n_iter < max_iter:  # lobpcg.Stall ended it
            how = f"in {n_iter} iterations, its bound no longer falling"
            remedy = "Ask for a larger tol"
        else:
            how, remedy = f"in max_iter={max_iter} iterations", "Increase max_iter"
        warnings.warn(
            f"eigen_solver={solver!r} did not converge {how}: {short}. "
            f"{remedy}, or use eigen_solver={other}.",
            EigenConvergenceWarning,
            stacklevel=2,
        )
    return NullSpace(vectors, values, solver, residual, n_iter, bound, tol, beyond=beyond)


def _refuse_non_finite(values: np.ndarray, solver: str) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"eigen_solver={solver!r} returned non-finite eigenvectors; try eigen_solver='dense' "
            "or a larger reg."
        )


def _stopped_short(solver: str, tol: float, residual: float, bound: float) -> str:
    """What says an iterative solver stopped short of its tolerance ("" if it did not).

    ``amg`` stops on the bound on its subspace's sine, scipy's ``lobpcg`` on the residual; for
    ARPACK tol is the relative accuracy of the Ritz values of the inverse (reached, or ARPACK
    raises), so the residual is only checked against 10 * tol, as a sign of a failed solve.
    """
    if solver == "amg" and bound > tol:
        return f"bound on the subspace's sine {bound:.2e} > tol = {tol:.1e}"
    if solver == "lobpcg" and residual > tol:
        return f"largest residual |Mv - lambda v| = {residual:.2e} > tol = {tol:.1e}"
    if solver in ("arpack", "factored") and residual > _accepted(tol):
        return f"largest residual |Mv - lambda v| = {residual:.2e} > 10 * tol = {10 * tol:.1e}"
    return ""
