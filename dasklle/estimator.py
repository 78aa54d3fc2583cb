"""``LocallyLinearEmbedding``: a drop-in for scikit-learn's estimator, running on Dask."""

from __future__ import annotations

import os
import time
from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.neighbors import KDTree
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import out_of_sample, pipeline
from .eigen import cost
from .io import store
from .io.arrays import as_dask_input, is_zarr_node
from .parameters import check_parameters
from .tasks.progress import compute


def _is_lazy(X) -> bool:
    """Inputs read lazily, never through scikit-learn's in-memory checks."""
    return is_zarr_node(X) or isinstance(X, da.Array | np.memmap | str | os.PathLike)


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
    eigen_solver : {"auto", "dense", "arpack", "factored", "lobpcg", "amg"}, default="auto"
        ``dense``: LAPACK on the dense M (the reference). ``arpack``: shift-invert Lanczos
        through a sparse LU of M (scikit-learn's). ``factored``: the same through the far
        sparser LU of I - W (connected graphs, else ``arpack``). ``lobpcg``: scipy's LOBPCG.
        ``amg``: dasklle's block LOBPCG with an aggregation multigrid preconditioner.
        ``auto``: ``dense`` up to 200 samples; ``factored`` on data with at most 15 features or
        5,000 samples; else ``amg`` (if ARPACK fails: ``dense`` up to 5,000 samples, else
        ``amg``, with a warning). ``eigen_solver_`` records what ran; the thresholds are
        ``dasklle.eigen`` settings (docs/configuration.md).
    tol : float or "auto", default="auto"
        Tolerance of the iterative eigen solvers: scikit-learn's for ARPACK and ``lobpcg``
        (auto: 1e-6); for ``amg``, the largest bound on the sine between the embedding's
        subspace and the exact one (auto: ``dasklle.eigen.amg-tol``, 1e-3).
    max_iter : int or "auto", default="auto"
        Iteration cap (auto: 100; ``amg``: 1000). A solve that stops short warns; ``amg``
        also stops short once its bound has stopped falling (a tol below rounding's floor).
    method : {"standard", "hessian", "modified", "ltsa"}, default="standard"
        LLE variant.
    hessian_tol : float, default=1e-4
        Tolerance of the Hessian eigenmapping method.
    modified_tol : float, default=1e-12
        Tolerance of modified LLE.
    neighbors_algorithm : {"auto", "brute", "kd_tree", "ball_tree", "nndescent", \
"projected"}, default="auto"
        ``brute``: exact blockwise search over dask chunks. ``kd_tree``/``ball_tree``: exact
        trees (scikit-learn's). ``nndescent``: approximate (pynndescent). ``projected``: 2k
        candidates found among the points projected on their top 64 principal axes (exact
        search up to 50,000 points, partitioned above), reranked by their true distance.
        ``auto``: a KD-tree for up to 15 features while the tree fits one task's memory, exact
        brute force while n^2 * n_features <= 2e11, else ``projected`` in every dimension. A
        tree or pynndescent index that would not fit one task's memory runs as ``projected``,
        with a warning. Exact searches rank equal distances by row index, the lower first. The
        thresholds are ``dasklle.neighbors`` settings (docs/configuration.md).
    random_state : int, RandomState instance or None, default=None
        Seeds the eigen solvers' starting vectors and pynndescent.
    n_jobs : int or None, default=None
        Threads for pynndescent inside its task (-1: all); the dask scheduler runs the blocks.
    chunk_rows : int or None, default=None
        Rows per block; by default about ``dasklle.tasks.block-bytes`` of input per block,
        fewer when the workers' memory limit asks for it, aligned with a zarr or HDF5 input's
        chunks.
    store : str, path or None, default=None
        If given, ``fit`` writes the embedding and its metadata to this zarr store: a new path,
        an empty folder or a store dasklle wrote. Before computing anything ``fit`` raises
        ``ValueError`` for a file, a folder dasklle did not write, a location it cannot write,
        and a store holding results of another input (unless ``overwrite``).
    n_eigenvalues : int or None, default=None
        How many bottom eigenvalues of M (above the constant one) to compute and keep in
        ``eigenvalues_``; at least ``n_components``. More show where the spectrum cuts off.
    verbose : bool, default=False
        Report each stage on stderr: dask progress bars on a terminal (``distributed.progress``
        with a distributed client), periodic lines in batch logs, and the eigen solver's
        iteration count and residual.
    resume : bool, default=True
        With a ``store``: save each stage's result (neighbors, weights, eigenvectors) in it as
        it completes, and reuse a saved stage when its fingerprint — a hash of a sample of the
        input rows and of every parameter the stage depends on — matches. An interrupted fit
        run again picks up after its last complete stage; a changed parameter recomputes the
        stage that uses it and those after it. With ``False`` every stage is recomputed (and
        still saved). The input fingerprint samples four rows of the input.
    overwrite : bool, default=False
        Empty an existing dasklle store before fitting (no resume). A file or a folder dasklle
        did not write is never deleted: it stays an error.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
        With a ``store`` and the eigen stage on a cluster's workers, a dask array reading the
        store, which the workers wrote (``np.asarray`` or ``fit_transform`` bring it in).
    reconstruction_error_ : float
        Sum of the kept eigenvalues of M, as scikit-learn defines it.
    eigenvalues_ : ndarray of shape (max(n_components, n_eigenvalues),)
        The bottom eigenvalues of M above the constant vector's, ascending.
    eigenvalue_estimates_ : ndarray of shape (m, 2)
        Eigenvalues above ``eigenvalues_`` that the solver estimated on the way, each with its
        residual (an eigenvalue of M lies within it); for the spectrum plot.
    neighbor_indices_ : ndarray of shape (n_samples, n_neighbors)
    weights_ : ndarray of shape (n_samples, n_neighbors) or None
        Barycentric weights (``method="standard"``); row i reconstructs point i from
        ``neighbor_indices_[i]``. ``get_weight_matrix()`` and ``get_cost_matrix()`` give W and M
        as scipy sparse arrays. When the eigen stage iterates on a cluster's workers, both are
        dask arrays held there (``np.asarray`` gathers them).
    eigen_solver_, eigen_placement_ : str
        The eigen solver that actually ran, and where ("client" or "workers").
    eigen_residual_, eigen_error_bound_ : float
        Largest residual ``|M v - lambda v|`` of the eigenvectors; bound on the sine between
        their span and the exact one, residuals over the gap to the next eigenvalue (or inf).
    n_iter_ : int or None
        LOBPCG iterations (lobpcg, amg); solves with M's pseudo-inverse (factored); or None.
    neighbors_algorithm_ : str
        The neighbor search that actually ran.
    n_graph_components_ : int
        Connected components of the neighbor graph; more than 1 makes the embedding meaningless
        (a ``DisconnectedGraphWarning`` says so during ``fit``).
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
        tol: float | str = "auto",
        max_iter: int | str = "auto",
        method: str = "standard",
        hessian_tol: float = 1e-4,
        modified_tol: float = 1e-12,
        neighbors_algorithm: str = "auto",
        random_state=None,
        n_jobs: int | None = None,
        chunk_rows: int | None = None,
        store: str | os.PathLike | None = None,
        n_eigenvalues: int | None = None,
        verbose: bool = False,
        resume: bool = True,
        overwrite: bool = False,
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
        self.n_eigenvalues = n_eigenvalues
        self.verbose = verbose
        self.resume = resume
        self.overwrite = overwrite

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _as_input(self, X, *, reset: bool) -> tuple[da.Array, str]:
        """Validate X (in memory through scikit-learn's checks) and wrap it as a dask array."""
        if _is_lazy(X):
            array, kind = as_dask_input(X, self.chunk_rows, n_neighbors=self.n_neighbors)
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
        return as_dask_input(X, self.chunk_rows, n_neighbors=self.n_neighbors)

    def _fit(self, X) -> None:
        check_parameters(self.get_params())
        array, source = self._as_input(X, reset=True)
        fingerprint = self._check_store(array)
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
            n_eigenvalues=self.n_eigenvalues,
            verbose=bool(self.verbose),
            checkpoints=self._checkpoints(),
            fingerprint=fingerprint,
        )
        self._n_features_out = result.embedding.shape[1]
        self.eigenvalues_ = result.eigenvalues
        self.reconstruction_error_ = result.reconstruction_error
        self.neighbor_indices_ = result.neighbor_indices
        self.weights_ = result.weights
        self.eigen_solver_ = result.eigen_solver
        self.eigen_placement_ = result.eigen_placement
        self.eigen_residual_ = result.eigen_residual
        self.eigen_error_bound_ = result.eigen_error_bound
        self.eigenvalue_estimates_ = result.eigenvalue_estimates
        self.n_iter_ = result.eigen_iterations
        self.neighbors_algorithm_ = result.neighbors_algorithm
        self.n_graph_components_ = result.n_graph_components
        self.timings_ = result.timings
        self._fit_X = array
        self._neighbor_index = result.neighbor_index
        self._embedding_index = None
        # M is kept only where it cannot be rebuilt from (neighbor_indices_, weights_).
        self._M = result.M if self.method != "standard" else None
        if self.store is not None:
            params = {k: v for k, v in self.get_params().items() if k != "store"}
            start = time.perf_counter()
            pipeline.write_result(self.store, result, params, fingerprint, source)
            self.timings_["write"] = time.perf_counter() - start
        self.embedding_ = pipeline.kept_embedding(result.embedding, self.store)

    def _check_store(self, array: da.Array) -> str | None:
        """The input's fingerprint, once the store is known to be a place fit may write to."""
        if self.store is None:
            return None
        fingerprint = pipeline.input_fingerprint(array)
        store.check_output_store(self.store, fingerprint, overwrite=bool(self.overwrite))
        return fingerprint

    def _checkpoints(self) -> store.Checkpoints | None:
        if self.store is None:
            return None
        # Without resume nothing is loaded, but stages are still saved for a later run.
        return store.Checkpoints(
            self.store, resume=bool(self.resume), overwrite=bool(self.overwrite)
        )

    def fit(self, X, y=None):
        """Compute the embedding of X.

        Parameters
        ----------
        X : array-like, dask array, zarr array or path, (n_samples, n_features)
            The data; a path may name any file input that ``dasklle embed`` reads.
        y : None
            Ignored.

        Returns
        -------
        self : LocallyLinearEmbedding
            The fitted estimator.
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Compute the embedding of X and return it, an ndarray (n_samples, n_components)."""
        self._fit(X)
        return np.asarray(self.embedding_)

    def transform(self, X):
        """Map new points into the fitted embedding.

        Each new point is written as a barycentric combination of its ``n_neighbors`` nearest
        training points (same regularisation as in ``fit``), and mapped to the same combination
        of their embedding coordinates.

        Parameters
        ----------
        X : array-like, dask array, zarr array or path, (n_samples, n_features)
            The new points.

        Returns
        -------
        ndarray of shape (n_samples, n_components), or a dask array for dask/zarr input
            Their embedding coordinates.
        """
        check_is_fitted(self)
        lazy = _is_lazy(X) and not isinstance(X, np.ndarray)
        array, _ = self._as_input(X, reset=False)
        indices, w = self._neighbor_index.query_with_weights(array, self.n_neighbors, self.reg)
        fitted = np.asarray(self.embedding_)  # the training points' coordinates are read
        if w is None:
            embedding = da.from_array(fitted, chunks=(-1, -1))
            Y = out_of_sample.barycentric_map(array, indices, self._fit_X, embedding, self.reg)
        else:  # the partitioned search solved the weights where it found the neighbors
            Y = da.from_array(np.einsum("ik,ikd->id", w, fitted[indices]))
        Y = Y.astype(fitted.dtype)
        return Y if lazy else compute(Y)[0]

    def inverse_transform(self, X):
        """Map points of the embedding space back to the input space.

        The mirror of ``transform``: each point is written as a barycentric combination of its
        ``n_neighbors`` nearest training points *in the embedding*, and mapped to the same
        combination of those training points in input space (read from the training data, lazily,
        when it is a dask or zarr array).

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_components)
            Points of the embedding space.

        Returns
        -------
        ndarray of shape (n_samples, n_features), or a dask array for dask input
            Their images in input space.
        """
        check_is_fitted(self)
        lazy = isinstance(X, da.Array)
        if lazy:
            array, _ = as_dask_input(X, self.chunk_rows)
        else:
            array, _ = as_dask_input(
                check_array(X, dtype=[np.float64, np.float32], input_name="X"), self.chunk_rows
            )
        if array.shape[1] != self.n_components:
            raise ValueError(
                f"X has {array.shape[1]} columns, but inverse_transform expects points of the "
                f"{self.n_components}-dimensional embedding."
            )
        fitted = np.asarray(self.embedding_)
        if self._embedding_index is None:
            self._embedding_index = KDTree(fitted)
        indices = out_of_sample.tree_neighbors(array, self._embedding_index, self.n_neighbors)
        embedding = da.from_array(fitted, chunks=(-1, -1))
        X_back = out_of_sample.barycentric_map(array, indices, embedding, self._fit_X, self.reg)
        X_back = X_back.astype(self._fit_X.dtype)
        return X_back if lazy else compute(X_back)[0]

    def get_weight_matrix(self) -> sp.csr_array:
        """W (n_samples x n_samples, sparse): row i holds point i's reconstruction weights."""
        check_is_fitted(self)
        if self.weights_ is None:
            raise ValueError(
                f"method={self.method!r} has no barycentric weight matrix; it is defined for "
                "method='standard'. Use get_cost_matrix() for M."
            )
        return cost.weight_matrix(np.asarray(self.neighbor_indices_), np.asarray(self.weights_))

    def get_cost_matrix(self) -> sp.csr_array:
        """M (n_samples x n_samples, sparse), whose bottom eigenvectors are the embedding."""
        check_is_fitted(self)
        if self._M is not None:
            return self._M
        return cost.cost_matrix(self.get_weight_matrix())


def locally_linear_embedding(
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
    random_state=None,
    n_jobs: int | None = None,
    neighbors_algorithm: str = "auto",
    chunk_rows: int | None = None,
    n_eigenvalues: int | None = None,
) -> tuple[np.ndarray, float]:
    """Locally Linear Embedding of X, as :func:`sklearn.manifold.locally_linear_embedding`.

    Parameters
    ----------
    X, n_neighbors, n_components, reg, eigen_solver, tol, max_iter, method, hessian_tol, \
modified_tol, random_state, n_jobs, neighbors_algorithm, chunk_rows, n_eigenvalues
        As for :class:`LocallyLinearEmbedding` and its ``fit``; ``n_neighbors`` and
        ``n_components`` have no default here, as in scikit-learn.

    Returns
    -------
    Y : ndarray of shape (n_samples, n_components)
    squared_error : float
        The sum of the kept eigenvalues of M (scikit-learn's ``reconstruction_error_``).
    """
    params: dict[str, Any] = dict(
        n_neighbors=n_neighbors, n_components=n_components, reg=reg, eigen_solver=eigen_solver,
        tol=tol, max_iter=max_iter, method=method, hessian_tol=hessian_tol,
        modified_tol=modified_tol, random_state=random_state, n_jobs=n_jobs,
        neighbors_algorithm=neighbors_algorithm, chunk_rows=chunk_rows,
        n_eigenvalues=n_eigenvalues,
    )  # fmt: skip
    model = LocallyLinearEmbedding(**params).fit(X)
    return model.embedding_, model.reconstruction_error_
