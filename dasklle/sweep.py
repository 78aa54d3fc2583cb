"""Parameter sweeps: the reconstruction error and a neighborhood score over a grid of
n_neighbors x n_components, and a suggested pair.

The neighbor graph is computed once, for the largest k: the lists are sorted by distance, so the
first k columns are the k-neighbor graph. For each k there is one M and one eigen solve for the
largest n_components; the error for d components is the sum of the first d eigenvalues, and the
embedding for d components is the first d eigenvectors. All the embeddings are scored together
(sampled trustworthiness and continuity, one pass over the data).

The reconstruction error grows with n_components by construction, so it cannot choose d; the
score can (``suggest``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from . import eigen, pipeline
from .io.arrays import as_dask_input
from .metrics import neighborhood_scores
from .parameters import PARAMETERS, check_data_dependent, check_int
from .tasks import progress


@dataclass
class SweepRow:
    """One cell of a sweep: the reconstruction error at (n_neighbors, n_components).

    ``eigen_solver`` and ``eigen_residual`` are those of the eigen solve for that n_neighbors;
    ``trustworthiness`` and ``continuity`` are sampled (``dasklle.metrics``; None when the sweep
    ran without a sample).
    """

    n_neighbors: int
    n_components: int
    reconstruction_error: float
    eigen_solver: str
    eigen_residual: float
    trustworthiness: float | None = None
    continuity: float | None = None

    @property
    def score(self) -> float:
        """Mean of trustworthiness and continuity (NaN without them)."""
        if self.trustworthiness is None or self.continuity is None:
            return float("nan")
        return (self.trustworthiness + self.continuity) / 2


# The suggestion takes the smallest n_components whose best score is within this of the best
# score of the whole grid: fewer dimensions that keep the neighborhoods nearly as well.
SCORE_TOLERANCE = 0.01


def reconstruction_error_grid(
    X,
    n_neighbors: Sequence[int],
    n_components: Sequence[int],
    *,
    method: str = "standard",
    reg: float = 1e-3,
    eigen_solver: str = "auto",
    tol: float | str = "auto",
    max_iter: int | str = "auto",
    neighbors_algorithm: str = "auto",
    random_state: int = 0,
    chunk_rows: int | None = None,
    quality_sample: int = 1000,
    verbose: bool = False,
) -> list[SweepRow]:
    """The reconstruction error (sum of the kept eigenvalues of M) and the sampled neighborhood
    scores for every (k, d) pair.

    Parameters
    ----------
    X : array-like, dask array, zarr array or path, shape (n_samples, n_features)
        The data.
    n_neighbors, n_components : sequence of int
        The grid's values.
    method, reg, eigen_solver, tol, max_iter, neighbors_algorithm, random_state, chunk_rows
        As for :class:`dasklle.LocallyLinearEmbedding`.
    quality_sample : int, default=1000
        Points sampled for trustworthiness and continuity (10 neighbors); 0 skips them.
    verbose : bool, default=False
        Report each stage on stderr.

    Returns
    -------
    list of SweepRow
        One per (n_neighbors, n_components), k-major.
    """
    if not n_neighbors or not n_components:
        raise ValueError("n_neighbors and n_components must each list at least one value.")
    ks = sorted({check_int("n_neighbors", k, 1) for k in n_neighbors})
    ds = sorted({check_int("n_components", d, 1) for d in n_components})
    PARAMETERS["method"].check("method", method)
    array, _ = as_dask_input(X, chunk_rows)
    for k in ks:
        check_data_dependent(*array.shape, k, max(ds), method)
    graph = pipeline.neighbor_graph(
        array,
        ks[-1],
        algorithm=neighbors_algorithm,
        seed=random_state,
        n_jobs=None,
        verbose=verbose,
    )
    rows, embeddings = [], []
    for k in ks:
        indices = np.ascontiguousarray(graph.indices[:, :k])
        local = pipeline.local_fit(
            array, indices, method=method, reg=reg, n_components=max(ds), verbose=verbose
        )
        M = pipeline.cost_operator(indices, local)
        result = eigen.null_space(
            M,
            max(ds),
            solver=eigen_solver,
            tol=tol,
            max_iter=max_iter,
            random_state=random_state,
            verbose=verbose,
        )
        for d in ds:
            error = float(np.sum(result.values[:d]))
            rows.append(SweepRow(k, d, error, result.solver, result.residual))
            if quality_sample > 0:
                embeddings.append(result.vectors[:, :d])
    if quality_sample > 0:
        with progress.stage("scores", verbose):
            _score(rows, array, embeddings, quality_sample, random_state, verbose)
    return rows


def _score(rows, X, embeddings, sample_size: int, random_state: int, verbose: bool) -> None:
    """Fill in each row's sampled trustworthiness and continuity (one pass over X for all)."""
    scores = neighborhood_scores(
        X, embeddings, sample_size=sample_size, random_state=random_state, verbose=verbose
    )
    for row, (trust, cont) in zip(rows, scores, strict=True):
        row.trustworthiness, row.continuity = trust, cont


def suggest(rows: Sequence[SweepRow]) -> tuple[int, int] | None:
    """The suggested (n_neighbors, n_components): the smallest n_components whose best score is
    within ``SCORE_TOLERANCE`` of the grid's best, with its best n_neighbors (None without
    scores).

    Parameters
    ----------
    rows : sequence of SweepRow
        The sweep.

    Returns
    -------
    (int, int) or None
    """
    scored = [r for r in rows if np.isfinite(r.score)]
    if not scored:
        return None
    best = max(r.score for r in scored)
    for d in sorted({r.n_components for r in scored}):
        column = [r for r in scored if r.n_components == d]
        top = max(column, key=lambda r: (r.score, -r.n_neighbors))
        if top.score >= best - SCORE_TOLERANCE:
            return top.n_neighbors, d
    return None


def plot(rows: Sequence[SweepRow], path: str | os.PathLike) -> None:
    """The sweep's heatmaps (:func:`dasklle.plotting.plot_sweep`) with its scores and suggestion.

    Parameters
    ----------
    rows : sequence of SweepRow
        The sweep.
    path : str or path
        The PNG file to write.
    """
    from .plotting import plot_sweep

    ks, ds, errors = as_grid(rows)
    scores = as_grid(rows, "score")[2]
    plot_sweep(ks, ds, errors, path, scores=scores, suggestion=suggest(rows))


def write_csv(rows: Sequence[SweepRow], path: str | os.PathLike) -> None:
    """Write the sweep to ``path`` as a CSV table with a header row.

    Parameters
    ----------
    rows : sequence of SweepRow
        The sweep.
    path : str or path
        The CSV file to write.
    """
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))


def as_grid(
    rows: Sequence[SweepRow], value: str = "reconstruction_error"
) -> tuple[list[int], list[int], np.ndarray]:
    """The sweep as a grid, for :func:`dasklle.plotting.plot_sweep`.

    Parameters
    ----------
    rows : sequence of SweepRow
        The sweep.
    value : str, default="reconstruction_error"
        The field (or ``"score"``) in the grid's cells.

    Returns
    -------
    ks, ds : list of int
        The n_neighbors and n_components values, ascending.
    grid : ndarray of shape (len(ks), len(ds))
        The values; NaN where the sweep has no row or no value.
    """
    ks = sorted({r.n_neighbors for r in rows})
    ds = sorted({r.n_components for r in rows})
    grid = np.full((len(ks), len(ds)), np.nan)
    for r in rows:
        cell = getattr(r, value)
        grid[ks.index(r.n_neighbors), ds.index(r.n_components)] = np.nan if cell is None else cell
    return ks, ds, grid
