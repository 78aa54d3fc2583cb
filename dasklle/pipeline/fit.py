"""A fit as the sequence of its stages: X -> neighbors -> weights -> M -> null space."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from dask.base import tokenize
from scipy.sparse.csgraph import connected_components

from .. import eigen, neighbors
from ..exceptions import DisconnectedGraphWarning
from ..io.store import Checkpoints
from ..parameters import check_data_dependent
from ..tasks import progress
from .runner import StageRunner
from .stages import ASSEMBLE, EIGEN, NEIGHBORS, WEIGHTS, Fit


@dataclass
class LLEResult:
    """Everything a fit produces."""

    embedding: np.ndarray
    eigenvalues: np.ndarray
    reconstruction_error: float
    neighbor_indices: np.ndarray
    weights: np.ndarray | None
    M: Any
    neighbor_index: neighbors.NeighborIndex
    neighbors_algorithm: str
    eigen_solver: str
    eigen_residual: float
    eigen_iterations: int | None = None
    eigen_error_bound: float = float("inf")
    eigen_tol: float | None = None
    eigen_placement: str = "client"
    eigenvalue_estimates: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    n_graph_components: int = 1
    timings: dict[str, float] = field(default_factory=dict)


def fit_lle(
    X,
    *,
    n_neighbors: int,
    n_components: int,
    reg: float = 1e-3,
    eigen_solver: str = "auto",
    tol: float | str = "auto",
    max_iter: int | str = "auto",
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
    fit = Fit(
        X=X,
        n_neighbors=n_neighbors,
        n_components=n_components,
        n_wanted=max(n_components, n_eigenvalues or 0),
        reg=reg,
        method=method,
        hessian_tol=hessian_tol,
        modified_tol=modified_tol,
        algorithm=neighbors.choose_algorithm(
            neighbors_algorithm, n_samples, n_features, n_neighbors
        ),
        eigen_solver=eigen_solver,
        tol=tol,
        max_iter=max_iter,
        seed=_seed(random_state),
        n_jobs=n_jobs,
        verbose=verbose,
    )
    fit.resident = eigen.places_on_workers(eigen_solver, X.shape, fit.n_wanted, method)
    fingerprint = fingerprint or (input_fingerprint(X) if checkpoints is not None else None)
    runner = StageRunner(checkpoints, fingerprint or "", verbose)

    fit.graph = runner.run(NEIGHBORS, fit)
    fit.algorithm = fit.graph.algorithm
    fit.n_graph_components = check_connected(fit.graph.indices)
    fit.local = runner.run(WEIGHTS, fit)
    fit.M = runner.run(ASSEMBLE, fit)
    space = runner.run(EIGEN, fit)
    if verbose:
        progress.log(_solved(space))

    return LLEResult(
        embedding=space.vectors[:, :n_components].astype(X.dtype, copy=False),
        eigenvalues=space.values,
        reconstruction_error=float(np.sum(space.values[:n_components])),
        neighbor_indices=fit.graph.indices,
        weights=fit.local.weights,
        M=fit.M,
        neighbor_index=fit.graph.index,
        neighbors_algorithm=fit.algorithm,
        eigen_solver=space.solver,
        eigen_residual=space.residual,
        eigen_iterations=space.n_iter,
        eigen_error_bound=space.error_bound,
        eigen_tol=space.tol,
        eigen_placement=space.placement,
        eigenvalue_estimates=space.beyond,
        n_graph_components=fit.n_graph_components,
        timings=runner.timings,
    )


def _seed(random_state) -> int:
    """An integer seed drawn once from random_state, so every stage sees the same stream."""
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    return int(random_state)


def _solved(space) -> str:
    """The progress line of the eigen stage: solver, residual, bound and what n_iter counts."""
    where = " on the workers" if space.placement == "workers" else ""
    line = (
        f"eigen solver {space.solver}{where}: residual {space.residual:.1e}, "
        f"bound on the subspace's sine {space.error_bound:.1e}"
    )
    if not space.n_iter:
        return line
    what = "solves with M's pseudo-inverse" if space.solver == "factored" else "iterations"
    return f"{line} after {space.n_iter} {what}"


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


def check_connected(indices) -> int:
    """Number of (weakly) connected components of the kNN graph; warns when more than one.

    LLE's null space then holds one constant vector per component, so the "embedding" mostly
    separates the components instead of unrolling them. Neighbor lists held on the workers (a
    dask array) are counted by one task there.
    """
    if isinstance(indices, np.ndarray):
        count, sizes = _components(indices)
    else:
        import dask

        (found,) = progress.compute(dask.delayed(_components)(indices), label="components")
        count, sizes = found
    k = indices.shape[1]
    if count > 1:
        warnings.warn(
            f"The {k}-nearest-neighbor graph has {count} connected components (sizes "
            f"{', '.join(map(str, sizes[:5]))}{', ...' if count > 5 else ''}): the embedding of "
            "a disconnected graph is not meaningful. Increase n_neighbors, or embed the "
            "components separately.",
            DisconnectedGraphWarning,
            stacklevel=3,
        )
    return int(count)


def _components(indices: np.ndarray) -> tuple[int, np.ndarray]:
    """The kNN graph's count of weakly connected components and their sizes, largest first."""
    n, k = indices.shape
    graph = sp.csr_array(
        (np.ones(n * k, dtype=np.int8), indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n)
    )
    count, labels = connected_components(graph, directed=True, connection="weak")
    return int(count), np.sort(np.bincount(labels))[::-1]


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
        "eigen_error_bound": result.eigen_error_bound,
        "eigen_tol": result.eigen_tol,
        "eigen_placement": result.eigen_placement,
        "eigen_iterations": result.eigen_iterations,
        "eigenvalue_estimates": np.asarray(result.eigenvalue_estimates).tolist(),
        "n_graph_components": result.n_graph_components,
        "neighbors_algorithm": result.neighbors_algorithm,
        "timings": result.timings,
        "dasklle_version": __version__,
    }


def write_result(path, result: LLEResult, parameters: dict[str, Any], fingerprint, source) -> None:
    """The embedding and its metadata into the store at ``path``, marked complete last."""
    from ..io import store

    attributes = store_attributes(result, parameters)
    attributes.update(input_fingerprint=fingerprint, input=source)
    store.write_embedding(path, result.embedding, result.eigenvalues, attributes)


def kept_embedding(embedding, path):
    """The embedding a fit keeps: one left on the workers is read from the store they wrote it
    to (at ``path``), or gathered when there is none."""
    if isinstance(embedding, np.ndarray):
        return embedding
    if path is not None:
        from ..io.store import lazy_embedding

        return lazy_embedding(path)
    (embedding,) = progress.compute(embedding)
    return embedding
