"""Parameter sweeps: the reconstruction error over a grid of n_neighbors x n_components.

The neighbor graph is computed once, for the largest k: the lists are sorted by distance, so the
first k columns are the k-neighbor graph. For each k there is one M and one eigen solve for the
largest n_components; the error for d components is the sum of the first d eigenvalues.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from . import eigen, pipeline
from .io.arrays import as_dask_input
from .parameters import PARAMETERS, check_data_dependent, check_int


@dataclass
class SweepRow:
    """One cell of a sweep: the reconstruction error at (n_neighbors, n_components).

    ``eigen_solver`` and ``eigen_residual`` are those of the eigen solve for that n_neighbors.
    """

    n_neighbors: int
    n_components: int
    reconstruction_error: float
    eigen_solver: str
    eigen_residual: float


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
    verbose: bool = False,
) -> list[SweepRow]:
    """The reconstruction error (sum of the kept eigenvalues of M) for every (k, d) pair.

    Parameters
    ----------
    X : array-like, dask array, zarr array or path, shape (n_samples, n_features)
        The data.
    n_neighbors, n_components : sequence of int
        The grid's values.
    method, reg, eigen_solver, tol, max_iter, neighbors_algorithm, random_state, chunk_rows
        As for :class:`dasklle.LocallyLinearEmbedding`.
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
    rows = []
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
    return rows


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


def as_grid(rows: Sequence[SweepRow]) -> tuple[list[int], list[int], np.ndarray]:
    """The sweep as a grid, for :func:`dasklle.plotting.plot_sweep`.

    Parameters
    ----------
    rows : sequence of SweepRow
        The sweep.

    Returns
    -------
    ks, ds : list of int
        The n_neighbors and n_components values, ascending.
    errors : ndarray of shape (len(ks), len(ds))
        The reconstruction errors; NaN where the sweep has no row.
    """
    ks = sorted({r.n_neighbors for r in rows})
    ds = sorted({r.n_components for r in rows})
    grid = np.full((len(ks), len(ds)), np.nan)
    for r in rows:
        grid[ks.index(r.n_neighbors), ds.index(r.n_components)] = r.reconstruction_error
    return ks, ds, grid
