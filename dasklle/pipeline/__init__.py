"""The stages strung together: X -> neighbors -> weights -> M -> null space (-> store)."""

from __future__ import annotations

import contextlib
import hashlib
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from scipy.sparse.csgraph import connected_components

from .. import eigen, neighbors
from ..eigen import cost
from ..exceptions import DisconnectedGraphWarning
from ..io.store import Checkpoints
from ..local import methods, weights
from ..parameters import check_data_dependent
from ..tasks import progress
from ..tasks.blocks import map_row_blocks, row_block_tasks, tree_reduce


@dataclass
class LLEResult:
    """Everything a fit produces."""

    embedding: np.ndarray
    eigenvalues: np.ndarray
    reconstruction_error: float
    neighbor_indices: np.ndarray
    weights: np.ndarray | None
    M: sp.csr_array
    neighbor_index: neighbors.NeighborIndex
    neighbors_algorithm: str
    eigen_solver: str
    eigen_residual: float
    eigen_iterations: int | None = None
    n_graph_components: int = 1
    timings: dict[str, float] = field(default_factory=dict)


def _seed(random_state) -> int:
    """An integer seed drawn once from random_state, so every stage sees the same stream."""
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    return int(random_state)


class _Timer:
    """Times named stages into a dict and announces them when verbose."""

    def __init__(self, verbose: bool):
        self.timings: dict[str, float] = {}
        self.verbose = verbose

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        with progress.stage(name, self.verbose):
            yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def neighbor_graph(
    X,
    n_neighbors: int,
    *,
    algorithm: str,
    seed: int,
    n_jobs: int | None,
    verbose: bool = False,
    reg: float | None = None,
) -> tuple[np.ndarray, neighbors.NeighborIndex, str, np.ndarray | None]:
    """Stage 1, computed: (indices (n, k) sorted by distance, reusable index, algorithm run,
    and the standard barycentric weights when the search computed them on the way — the
    partitioned search above ``PROJECTED_BRUTE_MAX_ROWS`` does, given ``reg``)."""
    algorithm = neighbors.choose_algorithm(algorithm, *X.shape, n_neighbors)
    if algorithm == "projected" and X.shape[0] > neighbors.PROJECTED_BRUTE_MAX_ROWS:

        def compute(*collections, label):
            return progress.compute(*collections, label=label, verbose=verbose)

        indices, W, partitions = neighbors.partitioned_graph(
            X, n_neighbors, reg=reg, random_state=seed, compute=compute, keep_index=True
        )
        return indices, neighbors.partitioned_index(X, partitions), algorithm, W
    indices, index = neighbors.nearest_neighbors(
        X, n_neighbors, algorithm=algorithm, random_state=seed, n_jobs=n_jobs
    )
    (indices,) = progress.compute(indices, label="neighbors", verbose=verbose)
    return indices, index, algorithm, None


def embedding_matrix(
    X,
    indices: np.ndarray,
    *,
    method: str,
    reg: float,
    n_components: int,
    hessian_tol: float = 1e-4,
    modified_tol: float = 1e-12,
    verbose: bool = False,
    timer: _Timer | None = None,
) -> tuple[sp.csr_array | cost.CostOperator, np.ndarray | None]:
    """Stages 2-3: M from the neighbor graph, and the barycentric weights (standard only).

    For the standard method M is a CostOperator: products through I - W, never formed.
    """
    timer = timer or _Timer(verbose)
    if method == "standard":
        with timer("weights"):
            (W_values,) = progress.compute(
                weights.neighbor_weights(X, indices, reg=reg), label="weights", verbose=verbose
            )
        with timer("assemble"):
            M = cost.CostOperator.from_weights(cost.weight_matrix(indices, W_values))
        return M, W_values
    with timer("weights"):
        M = _local_alignment(
            X,
            indices,
            method,
            verbose=verbose,
            n_components=n_components,
            hessian_tol=hessian_tol,
            modified_tol=modified_tol,
        )
    timer.timings.setdefault("assemble", 0.0)
    return M, None


def input_fingerprint(X) -> str:
    """A cheap content hash of X: its shape, dtype and four sampled rows (first, thirds, last).

    Used to decide whether checkpoints in a store belong to this input. It reads at most four
    chunks, so it cannot see every change: an input rewritten in place with the same shape and
    the same sampled rows would be taken for the old one (documented with ``resume``).
    """
    n = X.shape[0]
    rows = np.unique(np.linspace(0, n - 1, 4).astype(np.int64))
    (sample,) = progress.compute(X[rows])
    digest = hashlib.sha256(np.ascontiguousarray(sample).tobytes()).hexdigest()
    return tokenize(X.shape, str(X.dtype), digest)


def fit_lle(
    X,
    *,
    n_neighbors: int,
    n_components: int,
    reg: float = 1e-3,
    eigen_solver: str = "auto",
    tol: float = 1e-6,
    max_iter: int = 100,
    method: str = "standard",
    hessian_tol: float = 1e-4,
    modified_tol: float = 1e-12,
    neighbors_algorithm: str = "auto",
    random_state=None,
    n_jobs: int | None = None,
    n_eigenvalues: int | None = None,
    verbose: bool = False,
    checkpoints: Checkpoints | None = None,
    fingerprint: str | None = None,
) -> LLEResult:
    """Run LLE on a validated, row-chunked dask array X (see ``locally_linear_embedding``).

    With ``checkpoints``, each stage's result is saved as it completes, and a stage whose
    fingerprint (input sample + the parameters it depends on) matches a complete saved one is
    loaded instead of recomputed. ``fingerprint`` is ``input_fingerprint(X)`` when the caller
    has it already.
    """
    n_samples, n_features = X.shape
    check_data_dependent(n_samples, n_features, n_neighbors, n_components, method, n_eigenvalues)
    seed = _seed(random_state)
    timer = _Timer(verbose)
    n_wanted = max(n_components, n_eigenvalues or 0)
    algorithm = neighbors.choose_algorithm(neighbors_algorithm, n_samples, n_features, n_neighbors)
    if checkpoints is not None:
        fingerprint = fingerprint or input_fingerprint(X)
        checkpoints.begin(fingerprint)
    else:
        fingerprint = ""

    # Each stage's fingerprint chains the previous one: a changed parameter invalidates the
    # stage that uses it and everything after it. Seeds count only where randomness enters.
    fp_neighbors = tokenize(
        "neighbors",
        fingerprint,
        n_neighbors,
        algorithm,
        seed if algorithm in ("nndescent", "projected") else 0,
    )
    local_fit = (n_components, hessian_tol, modified_tol) if method != "standard" else ()
    fp_weights = tokenize("weights", fp_neighbors, method, reg, *local_fit)
    fp_eigen = tokenize("eigen", fp_weights, eigen_solver, tol, max_iter, n_wanted, seed)

    with timer("neighbors"):
        saved = checkpoints.load("neighbors", fp_neighbors) if checkpoints else None
        found_weights = None
        if saved is not None:
            indices = saved["indices"]
            index = neighbors.deferred_index(X, algorithm, n_neighbors, seed, n_jobs)
            _resumed("neighbors", verbose)
        else:
            indices, index, algorithm, found_weights = neighbor_graph(
                X,
                n_neighbors,
                algorithm=algorithm,
                seed=seed,
                n_jobs=n_jobs,
                verbose=verbose,
                reg=reg if method == "standard" else None,
            )
            if checkpoints:
                checkpoints.save(
                    "neighbors", fp_neighbors, {"indices": indices}, {"algorithm": algorithm}
                )

    n_graph_components = check_connected(indices)

    saved = checkpoints.load("weights", fp_weights) if checkpoints else None
    if saved is not None:
        with timer("weights"):
            W_values = saved.get("weights")
            if W_values is not None:
                M = cost.CostOperator.from_weights(cost.weight_matrix(indices, W_values))
            else:
                M = sp.csr_array(
                    (saved["data"], saved["indices"], saved["indptr"]), shape=(n_samples, n_samples)
                )
            _resumed("weights", verbose)
    elif found_weights is not None:  # solved inside the neighbor search's partitions
        W_values = found_weights
        timer.timings.setdefault("weights", 0.0)
        with timer("assemble"):
            M = cost.CostOperator.from_weights(cost.weight_matrix(indices, W_values))
        if checkpoints:
            checkpoints.save("weights", fp_weights, {"weights": W_values}, {"method": method})
    else:
        M, W_values = embedding_matrix(
            X,
            indices,
            method=method,
            reg=reg,
            n_components=n_components,
            hessian_tol=hessian_tol,
            modified_tol=modified_tol,
            verbose=verbose,
            timer=timer,
        )
        if checkpoints:
            arrays = (
                {"weights": W_values}
                if W_values is not None
                else {"data": M.data, "indices": M.indices, "indptr": M.indptr}
            )
            checkpoints.save("weights", fp_weights, arrays, {"method": method})

    with timer("eigen"):
        saved = checkpoints.load("eigen", fp_eigen) if checkpoints else None
        if saved is not None:
            info = saved["attributes"]
            result = eigen.NullSpace(
                saved["vectors"],
                saved["values"],
                info["solver"],
                info["residual"],
                info.get("n_iter"),
            )
            _resumed("eigen", verbose)
        else:
            result = eigen.null_space(
                M,
                n_wanted,
                solver=eigen_solver,
                tol=tol,
                max_iter=max_iter,
                random_state=seed,
                verbose=verbose,
                n_features=n_features,
                neighbors=indices,
                n_graph_components=n_graph_components,
            )
            if checkpoints:
                checkpoints.save(
                    "eigen",
                    fp_eigen,
                    {"vectors": result.vectors, "values": result.values},
                    {"solver": result.solver, "residual": result.residual, "n_iter": result.n_iter},
                )
    if verbose:
        progress.log(
            f"eigen solver {result.solver}: residual {result.residual:.1e}"
            + (f" after {result.n_iter} {_counted(result.solver)}" if result.n_iter else "")
        )

    embedding = result.vectors[:, :n_components].astype(X.dtype, copy=False)
    return LLEResult(
        embedding=embedding,
        eigenvalues=result.values,
        reconstruction_error=float(np.sum(result.values[:n_components])),
        neighbor_indices=indices,
        weights=W_values,
        M=M,
        neighbor_index=index,
        neighbors_algorithm=algorithm,
        eigen_solver=result.solver,
        eigen_residual=result.residual,
        eigen_iterations=result.n_iter,
        n_graph_components=n_graph_components,
        timings=timer.timings,
    )


def _counted(solver: str) -> str:
    """What ``n_iter`` counts for this solver."""
    return "solves with M's pseudo-inverse" if solver == "factored" else "iterations"


def check_connected(indices: np.ndarray) -> int:
    """Number of (weakly) connected components of the kNN graph; warns when more than one.

    LLE's null space then holds one constant vector per component, so the "embedding" mostly
    separates the components instead of unrolling them.
    """
    n, k = indices.shape
    graph = sp.csr_array(
        (np.ones(n * k, dtype=np.int8), indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n)
    )
    count, labels = connected_components(graph, directed=True, connection="weak")
    if count > 1:
        sizes = np.sort(np.bincount(labels))[::-1]
        warnings.warn(
            f"The {k}-nearest-neighbor graph has {count} connected components (sizes "
            f"{', '.join(map(str, sizes[:5]))}{', ...' if count > 5 else ''}): the embedding of "
            "a disconnected graph is not meaningful. Increase n_neighbors, or embed the "
            "components separately.",
            DisconnectedGraphWarning,
            stacklevel=3,
        )
    return int(count)


def _resumed(stage: str, verbose: bool) -> None:
    if verbose:
        progress.log(f"{stage}: resumed from the store's checkpoint")


def _block_modified_ratio(points, gathered, local, *, row_offset, n_components):
    evals, _ = methods.modified_spectrum(points, gathered[local], points.shape[1])
    return methods.modified_ratio(evals, n_components)


def _block_alignment(
    points, gathered, local, block_indices, *, row_offset, n_samples, method, **params
):
    neighbor_points = gathered[local]
    if method == "hessian":
        L = methods.hessian_local(neighbor_points, params["n_components"], params["hessian_tol"])
    elif method == "ltsa":
        L = methods.ltsa_local(neighbor_points, params["n_components"])
    else:
        L = methods.modified_local(
            points, neighbor_points, params["n_components"], params["eta"], params["modified_tol"]
        )
    own = np.arange(points.shape[0])[:, None] + row_offset
    return cost.alignment_matrix(np.hstack([own, block_indices]), L, n_samples)


def _local_alignment(
    X, indices: np.ndarray, method: str, verbose: bool = False, **params
) -> sp.csr_array:
    """M for the hessian, modified and ltsa methods: per-block local matrices, summed."""
    plan = weights.gather_plan(indices, X.chunks[0])
    per_block = [(X[needed], local) for needed, local in plan]
    if method == "modified":
        rho = map_row_blocks(
            _block_modified_ratio,
            [X],
            per_block=per_block,
            out_cols=None,
            dtype=np.float64,
            n_components=params["n_components"],
        )
        (rho,) = progress.compute(rho, label="modified LLE eta", verbose=verbose)
        params["eta"] = float(np.median(rho))
    starts = np.cumsum((0,) + X.chunks[0])
    per_block = [
        (*extra, indices[a:b])
        for extra, a, b in zip(per_block, starts[:-1], starts[1:], strict=True)
    ]
    parts = row_block_tasks(
        _block_alignment, [X], per_block=per_block, n_samples=X.shape[0], method=method, **params
    )
    (M,) = progress.compute(
        tree_reduce(parts, cost.sum_matrices), label=f"{method} local fits", verbose=verbose
    )
    M.sum_duplicates()
    return M


def store_attributes(result: LLEResult, parameters: dict[str, Any]) -> dict[str, Any]:
    """The metadata written next to an embedding."""
    from .. import __version__

    return {
        "parameters": parameters,
        "n_samples": int(result.embedding.shape[0]),
        "eigenvalues": result.eigenvalues,
        "reconstruction_error": result.reconstruction_error,
        "eigen_solver": result.eigen_solver,
        "eigen_residual": result.eigen_residual,
        "n_graph_components": result.n_graph_components,
        "neighbors_algorithm": result.neighbors_algorithm,
        "timings": result.timings,
        "dasklle_version": __version__,
    }
