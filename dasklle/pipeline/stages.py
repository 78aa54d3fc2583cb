"""The four stages of a fit, declared for the runner: neighbors, weights, assemble, eigen."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import eigen, neighbors
from ..eigen import cost
from ..local import weights
from ..local.alignment import local_alignment
from ..tasks import progress
from .runner import Stage

# the searches whose result depends on the random seed
RANDOMISED_SEARCHES = ("nndescent", "projected")


@dataclass
class Fit:
    """One fit's input and parameters, and each stage's result as it arrives."""

    X: Any
    n_neighbors: int
    n_components: int
    n_wanted: int
    reg: float
    method: str
    hessian_tol: float
    modified_tol: float
    algorithm: str
    eigen_solver: str
    tol: float | str
    max_iter: int | str
    seed: int
    n_jobs: int | None
    verbose: bool
    graph: NeighborGraph | None = None
    local: LocalFit | None = None
    M: Any = None
    n_graph_components: int = 1
    partial: Any = None  # the running stage's PartialState
    # the eigen stage iterates on the workers: the neighbor lists, weights and B stay there
    resident: bool = False


@dataclass
class NeighborGraph:
    """The neighbor stage's result; ``weights`` when the search solved them on the way."""

    indices: np.ndarray
    index: neighbors.NeighborIndex
    algorithm: str
    weights: np.ndarray | None = None


@dataclass
class LocalFit:
    """The weights stage's result: barycentric weights (standard LLE) or M (other methods)."""

    weights: np.ndarray | None = None
    M: sp.csr_array | None = None


def neighbor_graph(
    X,
    n_neighbors: int,
    *,
    algorithm: str,
    seed: int,
    n_jobs: int | None,
    verbose: bool = False,
    reg: float | None = None,
    resident: bool = False,
) -> NeighborGraph:
    """The k-nearest-neighbor graph, sorted by distance, and an index for new points.

    The partitioned search also solves the standard barycentric weights when given ``reg``;
    ``resident`` keeps its rows on the workers (dask arrays).
    """
    algorithm = neighbors.choose_algorithm(algorithm, *X.shape, n_neighbors)
    if neighbors.runs_partitioned(algorithm, X.shape[0]):
        indices, W, partitions = neighbors.partitioned_graph(
            X, n_neighbors, reg=reg, random_state=seed, keep_index=True, resident=resident,
            compute=partial(progress.run, verbose=verbose),
        )  # fmt: skip
        return NeighborGraph(indices, neighbors.partitioned_index(X, partitions), algorithm, W)
    indices, index = neighbors.nearest_neighbors(
        X, n_neighbors, algorithm=algorithm, random_state=seed, n_jobs=n_jobs
    )
    (indices,) = progress.compute(indices, label="neighbors", verbose=verbose)
    return NeighborGraph(indices, index, algorithm)


def local_fit(
    X,
    indices: np.ndarray,
    *,
    method: str,
    reg: float,
    n_components: int,
    hessian_tol: float = 1e-4,
    modified_tol: float = 1e-12,
    verbose: bool = False,
) -> LocalFit:
    """The barycentric weights (standard LLE), or M summed from local matrices (the others)."""
    if method == "standard":
        (W,) = progress.compute(
            weights.neighbor_weights(X, indices, reg=reg), label="weights", verbose=verbose
        )
        return LocalFit(weights=W)
    M = local_alignment(
        X,
        indices,
        method,
        verbose=verbose,
        n_components=n_components,
        hessian_tol=hessian_tol,
        modified_tol=modified_tol,
    )
    return LocalFit(M=M)


def cost_operator(indices, local: LocalFit, resident: bool = False):
    """M: for standard LLE a CostOperator, products through I - W with M never formed, or with
    ``resident`` a ResidentOperator, I - W built on the workers."""
    if local.weights is None:
        return local.M
    if resident:
        from ..eigen.resident import ResidentOperator
        from ..tasks.progress import distributed_client

        return ResidentOperator.from_neighbors(distributed_client(), indices, local.weights)
    W = cost.weight_matrix(np.asarray(indices), np.asarray(local.weights))
    return cost.CostOperator.from_weights(W)


def _rows(fit: Fit, saved):
    """A stored n-row array: read on the workers for a resident fit, here otherwise."""
    if not fit.resident:
        return np.asarray(saved)
    import dask.array as da

    return da.from_zarr(saved).persist()


# ---- the stages as the runner sees them -------------------------------------------------------


def _search_depends(fit: Fit) -> tuple:
    return (fit.n_neighbors, fit.algorithm, fit.seed if fit.algorithm in RANDOMISED_SEARCHES else 0)


def _search(fit: Fit) -> NeighborGraph:
    return neighbor_graph(
        fit.X,
        fit.n_neighbors,
        algorithm=fit.algorithm,
        seed=fit.seed,
        n_jobs=fit.n_jobs,
        verbose=fit.verbose,
        reg=fit.reg if fit.method == "standard" else None,
        resident=fit.resident,
    )


def _search_loaded(fit: Fit, saved: dict) -> NeighborGraph:
    index = neighbors.deferred_index(fit.X, fit.algorithm, fit.n_neighbors, fit.seed, fit.n_jobs)
    return NeighborGraph(_rows(fit, saved["indices"]), index, fit.algorithm)


NEIGHBORS = Stage(
    "neighbors",
    compute=_search,
    depends=_search_depends,
    save=lambda fit, graph: ({"indices": graph.indices}, {"algorithm": graph.algorithm}),
    load=_search_loaded,
    settings=("neighbors",),
)


def _weights_depends(fit: Fit) -> tuple:
    local = (fit.n_components, fit.hessian_tol, fit.modified_tol)
    return (fit.method, fit.reg, *(local if fit.method != "standard" else ()))


def _weights(fit: Fit) -> LocalFit:
    if fit.graph.weights is not None:  # solved inside the neighbor search's partitions
        return LocalFit(weights=fit.graph.weights)
    return local_fit(
        fit.X,
        fit.graph.indices,
        method=fit.method,
        reg=fit.reg,
        n_components=fit.n_components,
        hessian_tol=fit.hessian_tol,
        modified_tol=fit.modified_tol,
        verbose=fit.verbose,
    )


def _weights_saved(fit: Fit, local: LocalFit) -> tuple[dict, dict]:
    if local.weights is not None:
        return {"weights": local.weights}, {"method": fit.method}
    M = local.M
    return {"data": M.data, "indices": M.indices, "indptr": M.indptr}, {"method": fit.method}


def _weights_loaded(fit: Fit, saved: dict) -> LocalFit:
    if "weights" in saved:
        return LocalFit(weights=_rows(fit, saved["weights"]))
    n, parts = fit.X.shape[0], [np.asarray(saved[name]) for name in ("data", "indices", "indptr")]
    return LocalFit(M=sp.csr_array(tuple(parts), shape=(n, n)))


WEIGHTS = Stage(
    "weights",
    compute=_weights,
    depends=_weights_depends,
    save=_weights_saved,
    load=_weights_loaded,
)

ASSEMBLE = Stage(
    "assemble", compute=lambda fit: cost_operator(fit.graph.indices, fit.local, fit.resident)
)


def _solve(fit: Fit) -> eigen.NullSpace:
    return eigen.null_space(
        fit.M,
        fit.n_wanted,
        solver=fit.eigen_solver,
        tol=fit.tol,
        max_iter=fit.max_iter,
        random_state=fit.seed,
        verbose=fit.verbose,
        n_features=fit.X.shape[1],
        neighbors=fit.graph.indices,
        n_graph_components=fit.n_graph_components,
        partial=fit.partial,
        lazy=fit.resident,  # the vectors too stay on the workers, for the store
    )


def _or_inf(bound: float | None) -> float:
    """A stored bound (None: no finite bound)."""
    return float("inf") if bound is None else float(bound)


def _solve_loaded(fit: Fit, saved: dict) -> eigen.NullSpace:
    import dask.array as da

    info = saved["attributes"]
    vectors = saved["vectors"]
    # the fit's rows on the workers: the vectors too are read there
    vectors = da.from_zarr(vectors) if fit.resident else np.asarray(vectors)
    return eigen.NullSpace(
        vectors,
        np.asarray(saved["values"]),
        info["solver"],
        info["residual"],
        info.get("n_iter"),
        _or_inf(info.get("error_bound")),
        info.get("tol"),
        info.get("placement", "client"),
        np.asarray(info.get("beyond", np.zeros((0, 2))), dtype=float).reshape(-1, 2),
    )


EIGEN = Stage(
    "eigen",
    compute=_solve,
    depends=lambda fit: (fit.eigen_solver, fit.tol, fit.max_iter, fit.n_wanted, fit.seed),
    save=lambda fit, space: (
        {"vectors": space.vectors, "values": space.values},
        {
            "solver": space.solver,
            "residual": space.residual,
            "n_iter": space.n_iter,
            "error_bound": space.error_bound,
            "tol": space.tol,
            "placement": space.placement,
            "beyond": np.asarray(space.beyond).tolist(),
        },
    ),
    load=_solve_loaded,
    settings=("eigen",),
)
