"""The row order of a solve on the workers: contiguous ranges of it cut few edges of the kNN
graph, so that a product's halos stay small (docs/design/eigen.md)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import config

# rows whose coordinates place the k-means centres of the locality order
LOCALITY_SAMPLE = 100_000
# a dense eigh of an m x m matrix: the matrix, its copy, LAPACK's workspace and the vectors
DENSE_EIGH_BYTES_PER_ENTRY = 32


def locality_order(graph, n_ranges: int, seed: int, budget: int) -> np.ndarray:
    """A row order whose contiguous ranges cut few edges of the kNN graph.

    The graph is coarsened by aggregation to about ``eigen.coarsest-rows`` nodes; the bottom
    eigenvectors of that graph's normalized Laplacian, carried back to every row, are grouped
    into n_ranges clusters by k-means, and rows go by cluster, along the first eigenvector
    within one. Along a reverse Cuthill-McKee order instead, most references of high-dimensional
    data leave their range (docs/design/eigen.md). ``budget``: the bytes the coarse level's
    eigendecomposition may take; past it, it is found by shift-invert on the sparse matrix.
    """
    from sklearn.cluster import KMeans

    coordinates = _spectral_coordinates(graph, max(8, n_ranges), seed, budget)
    coordinates /= np.maximum(coordinates.std(axis=0), 1e-300)
    # the centres from a sample: k-means on every row costs a few copies of the coordinates
    sample = (
        np.random.default_rng(seed).choice(len(coordinates), LOCALITY_SAMPLE, replace=False)
        if len(coordinates) > LOCALITY_SAMPLE
        else slice(None)
    )
    kmeans = KMeans(n_ranges, n_init=3, random_state=seed).fit(coordinates[sample])
    groups = kmeans.predict(coordinates)
    return np.lexsort((coordinates[:, 0], groups))


def _spectral_coordinates(graph, wanted: int, seed: int, budget: int) -> np.ndarray:
    """The bottom nontrivial eigenvectors of a coarsened graph's normalized Laplacian, as
    coordinates of every row (each row takes its aggregate's). ``budget``: the bytes a dense
    eigendecomposition of the coarse level may take."""
    import scipy.sparse.linalg as spla
    from pyamg.aggregation import standard_aggregation

    # float32 while coarsening: the edge counts summed are exact, and no float64 copy is made
    coarse, maps = sp.csr_matrix(graph, dtype=np.float32), []
    while coarse.shape[0] > int(config.get("eigen.coarsest-rows")):
        aggregation = standard_aggregation(coarse)[0].tocsr().astype(np.float32)
        if aggregation.shape[1] < 10 * wanted:  # too coarse to tell the ranges apart
            break
        maps.append(aggregation)
        coarse = (aggregation.T @ coarse @ aggregation).tocsr()
        coarse.setdiag(0)
        coarse.eliminate_zeros()
    coarse = coarse.astype(np.float64)
    scale = 1.0 / np.sqrt(np.maximum(np.asarray(coarse.sum(axis=1)).ravel(), 1e-12))
    laplacian = sp.eye(coarse.shape[0]) - sp.diags(scale) @ coarse @ sp.diags(scale)
    wanted = min(wanted, coarse.shape[0] - 2)
    small = coarse.shape[0] <= 2 * int(config.get("eigen.coarsest-rows"))
    if small and DENSE_EIGH_BYTES_PER_ENTRY * coarse.shape[0] ** 2 <= budget:
        _, vectors = np.linalg.eigh(laplacian.toarray())
        vectors = vectors[:, : wanted + 1]
    else:  # shift-invert just below the spectrum's bottom (the Laplacian is singular)
        # a seeded start: ARPACK's own would differ from one call to the next in a process
        v0 = np.random.default_rng(seed).standard_normal(coarse.shape[0])
        _, vectors = spla.eigsh(laplacian.tocsc(), wanted + 1, sigma=-1e-3, which="LM", v0=v0)
    coordinates = scale[:, None] * vectors[:, 1:]
    for aggregation in reversed(maps):
        coordinates = aggregation @ coordinates
    return coordinates
