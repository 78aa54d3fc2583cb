"""The ``"amg"`` eigen solver: block LOBPCG preconditioned by solves with B and B^T (``inverse``,
``eigen.preconditioner``; on the workers ``inverse_workers``), or by one multigrid cycle for M.

The rows are put in reverse Cuthill-McKee order (the products then read memory in order), the
hierarchy is built on M shifted by ``eigen.shift-fraction`` of its mean diagonal (M itself is
singular), the constant vector is held out as a hard constraint, and BLAS runs one thread (the
dense work is on thin n x block arrays). Measurements: docs/design/eigen.md.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee
from threadpoolctl import threadpool_limits

from .. import config
from ..exceptions import FallbackWarning
from . import multigrid
from .cost import CostOperator, compact_csr
from .lobpcg import LobpcgResult, lobpcg


def bottom_eigenvectors(
    M,
    n_components: int,
    *,
    neighbors: np.ndarray | None = None,
    block: int,
    tol: float,
    max_iter: int,
    rng: np.random.Generator,
    on_iteration=None,
    start: np.ndarray | None = None,
    first_iteration: int = 0,
    checkpoint=None,
    client=None,
    inverse: bool = False,
) -> LobpcgResult:
    """The n_components eigenpairs of M above the constant vector, and the next pair.

    Parameters
    ----------
    M : sparse symmetric positive semi-definite matrix with M @ 1 = 0, or a CostOperator
        (then the products never form M; the hierarchy is built from M once)
    n_components : eigenpairs wanted
    neighbors : (n, k) kNN indices, the aggregates' graph (else pyamg's strength measure on M)
    block : LOBPCG block size (n_components plus a few extra vectors)
    tol : the largest bound on the sine between the wanted subspace and the exact one
    max_iter : iteration cap
    rng : generator for the random start and the hierarchy's estimates
    on_iteration : called as on_iteration(n_iter, bound, X, theta) once per iteration
    start, first_iteration : a saved (n, block) block in M's row order to start from, and the
        iterations it took (they count against max_iter)
    checkpoint : callable(n_iter, state) called every iteration, ``state()`` the arrays that
        save the block (``saved_state``); with ``load()``, a worker solve that loses a worker
        starts again from what it loads, not from a block kept in this process
    client : a distributed Client to iterate on its workers (M a CostOperator, scattered there
        in row chunks, or a ``resident.ResidentOperator``), or None
    inverse : precondition by solves with B and B^T (``inverts``), else by a cycle for M

    Returns
    -------
    LobpcgResult
        All the block's pairs (in the client) or n_components + 1 (on the workers), ascending,
        vectors in M's row order (from the workers, a ``kept.WorkerVectors`` left there).
    """
    n = M.shape[0]
    if client is not None:
        resident, order, bounds = _on_workers(M, client, rng)
    else:
        graph = multigrid.knn_graph(neighbors, n) if neighbors is not None else None
        order = _order(M, graph)
    X, resumed = _start(n, block, start, order, rng, on_workers=client is not None)
    first_iteration = first_iteration if resumed else 0

    def report(n_iter, bound, current, theta):
        if on_iteration is not None:
            on_iteration(n_iter, bound, current, theta)
        if checkpoint is not None:
            checkpoint(n_iter, lambda: saved_state(current, order))

    if client is not None:
        result = _on_workers_solved(
            client, resident, order, X, n_components, tol=tol, max_iter=max_iter, rng=rng,
            on_iteration=report, first_iteration=first_iteration,
            bounds=bounds, reload=_reload(checkpoint, order), inverse=inverse,
        )  # fmt: skip
    else:
        with threadpool_limits(limits=1, user_api="blas"):  # BLAS on one thread
            ordered, graph = _permuted(M, graph, order)
            preconditioner, X = _preconditioned(ordered, graph, rng, inverse, X)
            del graph  # the iterations need only the hierarchy built on it
            result = _in_process(
                ordered, preconditioner, X, n_wanted=n_components, tol=tol,
                max_iter=max_iter, on_iteration=report, first_iteration=first_iteration,
            )  # fmt: skip
    # the whole block (the pairs beyond the wanted ones estimate the spectrum); from the workers,
    # n_components + 1, left there
    if client is None:
        result.vectors = _unpermuted(result.vectors, order)
    result.values = result.values[: result.vectors.shape[1]]
    return result


def _on_workers_solved(*args, **kwargs):
    """``workers.solve`` in one span: the scheduler opens a new one, and keeps it for good,
    whenever tasks arrive after the cluster went idle (every round trip of an iteration)."""
    from distributed import span

    from . import workers

    with span("dasklle-eigen"):
        return workers.solve(*args, **kwargs)


def _on_workers(M, client, rng):
    """B's rows on the workers (M's scattered, unless they are there) and the locality order
    that one task computes there, for the row ranges (their bounds) that the solve keeps: every
    piece of the solve is then built on the workers. A worker lost meanwhile costs the order's
    task (and B's chunks, if scattered), not the fit."""
    from . import workers
    from .resident import ResidentOperator

    resident = M if isinstance(M, ResidentOperator) else ResidentOperator.scattered(client, M)
    bounds = workers.row_bounds(M.shape[0], client)  # for the workers present now, kept
    seed = int(rng.integers(2**31 - 1))
    retries = int(config.get("eigen.worker-retries"))
    for attempt in range(retries + 1):
        try:
            return resident, resident.locality_order(len(bounds) - 1, seed), bounds
        except workers.worker_lost() as exc:
            if attempt == retries:
                raise
            resident = resident.rebuilt()
            warnings.warn(
                f"a worker was lost while the amg solve's rows were ordered "
                f"({type(exc).__name__}); the order is computed again",
                FallbackWarning,
                stacklevel=3,
            )


def _start(n: int, block: int, start, order: np.ndarray, rng, on_workers: bool):
    """The start block in ``order`` and whether it is the saved ``start``. The random one is
    drawn when resuming too, so that the hierarchy's rng stays; for the workers, it is drawn
    there, range by range."""
    if on_workers:
        from .workers import RandomStart

        X = RandomStart(block, int(rng.integers(2**31 - 1)))
    else:
        X = rng.standard_normal((n, block))
    if start is not None and start.shape == (n, block):
        return np.asarray(start, dtype=np.float64)[order], True
    return X, False


def _in_process(M, preconditioner, X: np.ndarray, **options) -> LobpcgResult:
    """LOBPCG in this process, M in the row order of X, orthogonal to the constant vector."""
    constraint = np.full((M.shape[0], 1), 1.0 / np.sqrt(M.shape[0]))
    return lobpcg(M, X, preconditioner, constraint, **options)


def _unpermuted(X: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rows of X (in ``order``) back in M's own row order."""
    out = np.empty_like(X)
    out[order] = X
    return out


def saved_state(block, order: np.ndarray) -> dict:
    """The arrays that save an iteration's block: in M's row order from this process; from the
    workers, as it lies there (in ``order``, written by the workers) with the order."""
    if isinstance(block, np.ndarray):
        return {"vectors": _unpermuted(block, order)}
    return {"vectors": block.to_dask(), "order": order}


def start_from(saved: dict) -> np.ndarray:
    """A block that ``saved_state`` saved, in M's row order."""
    vectors = np.asarray(saved["vectors"])
    return _unpermuted(vectors, np.asarray(saved["order"])) if "order" in saved else vectors


def _reload(checkpoint, order: np.ndarray):
    """None, or the function that gives the checkpoint's last block in ``order`` and its
    iteration (None when it has none)."""
    if checkpoint is None or not hasattr(checkpoint, "load"):
        return None

    def reload():
        saved = checkpoint.load()
        if saved is None:
            return None
        return start_from(saved)[order], int(saved["attributes"]["progress"])

    return reload


def _order(M, graph) -> np.ndarray:
    """Reverse Cuthill-McKee of the graph (of M's pattern without one)."""
    pattern = graph if graph is not None else (M.tocsr() if isinstance(M, CostOperator) else M)
    return reverse_cuthill_mckee(sp.csr_matrix(pattern), symmetric_mode=True)


def _permuted(M, graph, order: np.ndarray):
    """M and the graph (or None) with rows and columns in ``order``."""
    if isinstance(M, CostOperator):
        M = M.permuted(order)
    else:
        M = compact_csr(sp.csr_array(M)[order][:, order], np.float64)
    if graph is not None:
        graph = sp.csr_array(graph)[order][:, order]
    return M, graph


def inverts(M, neighbors, n_graph_components: int | None = None, on_workers=False) -> bool:
    """Whether the iteration is preconditioned by solves with B and B^T (``inverse.InverseOfM``
    here, ``inverse_workers.WorkerInverse`` ``on_workers``): M given through B, the kNN graph
    for the aggregates (on the workers, B's pattern), and that graph connected (one left null
    vector of B; components are counted when not given)."""
    from .resident import ResidentOperator

    if config.get("eigen.preconditioner") != "inverse":
        return False
    if on_workers and M.shape[0] < config.get("eigen.inverse-workers-min-rows"):
        return False  # each inner step's round trips cost more than the cycle's iterations
    if on_workers and isinstance(M, ResidentOperator):
        return n_graph_components == 1
    if not isinstance(M, CostOperator) or (neighbors is None and not on_workers):
        return False
    if n_graph_components is None:
        from .factored import graph_components

        n_graph_components = graph_components(M.B)
    return n_graph_components == 1


def _preconditioned(M, graph, rng, inverse: bool, X: np.ndarray):
    """The preconditioner and the start block: solves with B and B^T (``inverse``) where their
    cycle converges, else the cycle for M, with the block widened to its extra vectors."""
    if inverse:
        from .inverse import InverseOfM, mutual_weight, warn_fallback

        solves = InverseOfM(M.B, graph, rng, BT=M.BT)  # M's B^T, built once for both
        if solves.converges:
            return solves, X
        warn_fallback(solves.null_residual, mutual_weight(M.B, M.BT), stacklevel=6)
        wider = config.get("eigen.lobpcg-extra-vectors") - config.get("eigen.inverse-extra-vectors")
        X = np.hstack([X, rng.standard_normal((X.shape[0], max(0, wider)))])
    return _preconditioner(M, graph, rng), X


def _preconditioner(M, graph, rng):
    """The multigrid cycle of M + shift * I."""
    shift = float(config.get("eigen.shift-fraction")) * float(M.diagonal().mean())
    if isinstance(M, CostOperator):
        return multigrid.build_preconditioner(M.with_shift(shift), graph, rng)
    shifted = (M + shift * sp.eye_array(M.shape[0], format="csr")).tocsr()
    return multigrid.build_preconditioner(shifted, graph, rng)
