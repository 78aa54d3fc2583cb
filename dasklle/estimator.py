"""``LocallyLinearEmbedding``: a drop-in for scikit-learn's estimator, running on Dask."""

from __future__ import annotations

import os
from typing import Any

import dask
import dask.array as da
import numpy as np
import zarr
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import pipeline, store, weights
from ._chunked import map_row_blocks
from ._validation import as_dask_input, check_parameters

_LAZY_INPUTS = (da.Array, zarr.Array, str, os.PathLike)


class LocallyLinearEmbedding(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Locally Linear Embedding on Dask: chunked, out of core, scikit-learn compatible.

    Takes every parameter of :class:`sklearn.manifold.LocallyLinearEmbedding` with the same
    meaning, plus ``chunk_rows`` and ``store``. Computation runs on the current dask scheduler:
    a ``distributed.Client`` if one is active, else dask's default (threads), or whatever
    ``dask.config.set(scheduler=...)`` selects.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbors of each point (the point itself excluded).
    n_components : int, default=2
        Dimension of the embedding.
    reg : float, default=1e-3
        Regularisation of the local Gram matrices, relative to their trace.
    eigen_solver : {"auto", "dense", "arpack", "lobpcg", "amg"}, default="auto"
        ``dense``: LAPACK on the dense M (the reference; O(n^2) memory). ``arpack``: shift-invert
        Lanczos (scikit-learn's choice). ``lobpcg``: LOBPCG with the constant vector deflated.
        ``amg``: LOBPCG preconditioned with algebraic multigrid (pyamg). ``auto``: as
        scikit-learn (``arpack`` for n > 200 and n_components < 9, else ``dense``).
    tol : float, default=1e-6
        Convergence tolerance of the iterative eigen solvers.
    max_iter : int, default=100
        Maximum iterations of the iterative eigen solvers.
    method : {"standard", "hessian", "modified", "ltsa"}, default="standard"
        LLE variant.
    hessian_tol : float, default=1e-4
        Tolerance of the Hessian eigenmapping method.
    modified_tol : float, default=1e-12
        Tolerance of modified LLE.
    neighbors_algorithm : {"auto", "brute", "kd_tree", "ball_tree", "nndescent"}, default="auto"
        ``brute``: exact blockwise search over dask chunks. ``kd_tree``/``ball_tree``: exact
        trees (scikit-learn's). ``nndescent``: approximate (pynndescent). ``auto``: a KD-tree
        for up to 15 features, exact brute force while n^2 * n_features <= 2e11, else
        pynndescent.
    random_state : int, RandomState instance or None, default=None
        Seeds the eigen solvers' starting vectors and pynndescent.
    n_jobs : int or None, default=None
        Threads for pynndescent inside its task (-1: all). Parallelism across row blocks comes
        from the dask scheduler.
    chunk_rows : int or None, default=None
        Rows per block; by default about 16 MB of input per block (zarr inputs keep their chunks).
    store : str, path or None, default=None
        If given, ``fit`` writes the embedding and its metadata to this zarr store.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
    reconstruction_error_ : float
        Sum of the kept eigenvalues of M, as scikit-learn defines it.
    eigenvalues_ : ndarray of shape (n_components,)
        The kept (bottom, non-constant) eigenvalues of M.
    neighbor_indices_ : ndarray of shape (n_samples, n_neighbors)
    weights_ : ndarray of shape (n_samples, n_neighbors)
        Barycentric weights; row i reconstructs point i from ``neighbor_indices_[i]``.
    eigen_solver_ : str
        The eigen solver that actually ran.
    eigen_residual_ : float
        Largest residual |M v - lambda v| of the returned eigenvectors.
    neighbors_algorithm_ : str
        The neighbor search that actually ran.
    timings_ : dict
        Seconds spent in each stage.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has feature names

    Examples
    --------
    >>> from dasklle import LocallyLinearEmbedding
    >>> from dasklle.datasets import swiss_roll
    >>> X, _ = swiss_roll(1000, random_state=0)
    >>> Y = LocallyLinearEmbedding(n_neighbors=12, random_state=0).fit_transform(X)
    >>> Y.shape
    (1000, 2)
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 5,
        n_components: int = 2,
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
        chunk_rows: int | None = None,
        store: str | os.PathLike | None = None,
    ):
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.reg = reg
        self.eigen_solver = eigen_solver
        self.tol = tol
        self.max_iter = max_iter
        self.method = method
        self.hessian_tol = hessian_tol
        self.modified_tol = modified_tol
        self.neighbors_algorithm = neighbors_algorithm
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.chunk_rows = chunk_rows
        self.store = store

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _as_input(self, X, *, reset: bool) -> tuple[da.Array, str]:
        """Validate X (in memory through scikit-learn's checks) and wrap it as a dask array."""
        if isinstance(X, _LAZY_INPUTS):
            array, kind = as_dask_input(X, self.chunk_rows)
            if reset:
                self.n_features_in_ = array.shape[1]
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif array.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {array.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            return array, kind
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            ensure_min_samples=1 if not reset else 2,
        )
        return as_dask_input(X, self.chunk_rows)

    def _fit(self, X) -> None:
        check_parameters(self.get_params())
        array, _ = self._as_input(X, reset=True)
        result = pipeline.fit_lle(
            array,
            n_neighbors=self.n_neighbors,
            n_components=self.n_components,
            reg=self.reg,
            eigen_solver=self.eigen_solver,
            tol=self.tol,
            max_iter=self.max_iter,
            method=self.method,
            hessian_tol=self.hessian_tol,
            modified_tol=self.modified_tol,
            neighbors_algorithm=self.neighbors_algorithm,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        self.embedding_ = result.embedding
        self._n_features_out = result.embedding.shape[1]
        self.eigenvalues_ = result.eigenvalues
        self.reconstruction_error_ = result.reconstruction_error
        self.neighbor_indices_ = result.neighbor_indices
        self.weights_ = result.weights
        self.eigen_solver_ = result.eigen_solver
        self.eigen_residual_ = result.eigen_residual
        self.neighbors_algorithm_ = result.neighbors_algorithm
        self.timings_ = result.timings
        self._fit_X = array
        self._neighbor_index = result.neighbor_index
        self._M = result.M
        if self.store is not None:
            params = {k: v for k, v in self.get_params().items() if k != "store"}
            store.write_embedding(
                self.store,
                result.embedding,
                result.eigenvalues,
                pipeline.store_attributes(result, params),
            )

    def fit(self, X, y=None):
        """Compute the embedding of X.

        Parameters
        ----------
        X : array-like, dask array, zarr array or path to a zarr array, (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Compute the embedding of X and return it, an ndarray (n_samples, n_components)."""
        self._fit(X)
        return self.embedding_

    def transform(self, X):
        """Map new points into the fitted embedding.

        Each new point is written as a barycentric combination of its ``n_neighbors`` nearest
        training points (same regularisation as in ``fit``), and mapped to the same combination
        of their embedding coordinates.

        Parameters
        ----------
        X : array-like, dask array, zarr array or path, (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components), or a dask array for dask/zarr input
        """
        check_is_fitted(self)
        lazy = isinstance(X, _LAZY_INPUTS)
        array, _ = self._as_input(X, reset=False)
        (indices,) = dask.compute(self._neighbor_index.query(array, self.n_neighbors))
        w = weights.neighbor_weights(array, indices, reg=self.reg, points=self._fit_X)
        coordinates = [(self.embedding_[indices[s]],) for s in _block_slices(array.chunks[0])]
        Y = map_row_blocks(
            _combine,
            [w],
            per_block=coordinates,
            out_cols=self.n_components,
            dtype=self.embedding_.dtype,
        )
        return Y if lazy else Y.compute()


def _block_slices(row_chunks) -> list[slice]:
    bounds = np.concatenate([[0], np.cumsum(row_chunks)])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _combine(w: np.ndarray, coordinates: np.ndarray, *, row_offset: int) -> np.ndarray:
    return np.einsum("ik,ikd->id", w, coordinates).astype(coordinates.dtype, copy=False)


def locally_linear_embedding(
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
    random_state=None,
    n_jobs: int | None = None,
    neighbors_algorithm: str = "auto",
    chunk_rows: int | None = None,
) -> tuple[np.ndarray, float]:
    """Locally Linear Embedding of X, as :func:`sklearn.manifold.locally_linear_embedding`.

    Parameters are those of :class:`LocallyLinearEmbedding`.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    squared_error : float
        The sum of the kept eigenvalues of M (scikit-learn's ``reconstruction_error_``).
    """
    params: dict[str, Any] = dict(
        n_neighbors=n_neighbors,
        n_components=n_components,
        reg=reg,
        eigen_solver=eigen_solver,
        tol=tol,
        max_iter=max_iter,
        method=method,
        hessian_tol=hessian_tol,
        modified_tol=modified_tol,
        random_state=random_state,
        n_jobs=n_jobs,
        neighbors_algorithm=neighbors_algorithm,
        chunk_rows=chunk_rows,
    )
    model = LocallyLinearEmbedding(**params).fit(X)
    return model.embedding_, model.reconstruction_error_
