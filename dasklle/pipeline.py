"""The stages strung together: X -> neighbors -> weights -> M -> null space (-> store)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
import scipy.sparse as sp

from . import assemble, eigen, neighbors, weights
from ._validation import check_data_dependent


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
) -> LLEResult:
    """Run LLE on a validated, row-chunked dask array X (see ``locally_linear_embedding``)."""
    n_samples, n_features = X.shape
    check_data_dependent(n_samples, n_features, n_neighbors, n_components, method)
    if method != "standard":
        raise NotImplementedError(
            f"method={method!r} is not implemented yet; use method='standard'."
        )
    seed = _seed(random_state)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    algorithm = neighbors.choose_algorithm(neighbors_algorithm, n_samples, n_features)
    indices, index = neighbors.nearest_neighbors(
        X, n_neighbors, algorithm=algorithm, random_state=seed, n_jobs=n_jobs
    )
    (indices,) = dask.compute(indices)
    timings["neighbors"] = time.perf_counter() - start

    start = time.perf_counter()
    (W_values,) = dask.compute(weights.neighbor_weights(X, indices, reg=reg))
    timings["weights"] = time.perf_counter() - start

    start = time.perf_counter()
    W = assemble.weight_matrix(indices, W_values)
    M = assemble.cost_matrix(W)
    timings["assemble"] = time.perf_counter() - start

    start = time.perf_counter()
    result = eigen.null_space(
        M, n_components, solver=eigen_solver, tol=tol, max_iter=max_iter, random_state=seed
    )
    timings["eigen"] = time.perf_counter() - start

    embedding = result.vectors.astype(X.dtype, copy=False)
    return LLEResult(
        embedding=embedding,
        eigenvalues=result.values,
        reconstruction_error=float(np.sum(result.values)),
        neighbor_indices=indices,
        weights=W_values,
        M=M,
        neighbor_index=index,
        neighbors_algorithm=algorithm,
        eigen_solver=result.solver,
        eigen_residual=result.residual,
        timings=timings,
    )


def store_attributes(result: LLEResult, parameters: dict[str, Any]) -> dict[str, Any]:
    """The metadata written next to an embedding."""
    from . import __version__

    return {
        "parameters": parameters,
        "n_samples": int(result.embedding.shape[0]),
        "eigenvalues": result.eigenvalues,
        "reconstruction_error": result.reconstruction_error,
        "eigen_solver": result.eigen_solver,
        "eigen_residual": result.eigen_residual,
        "neighbors_algorithm": result.neighbors_algorithm,
        "timings": result.timings,
        "dasklle_version": __version__,
    }
