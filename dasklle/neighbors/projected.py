"""The projected search: candidates found among the points projected on their top principal
axes (estimated from a sample), then reranked by their true distance in full dimension.

Up to ``neighbors.projected-brute-max-rows`` rows the candidates come from an exact search of
the whole projection (here); above, from inside partitions (``partitioned.py``). See
docs/design/neighbors.md for the recall and cost of each choice.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from .. import config
from ..tasks.blocks import shared
from ..tasks.progress import compute
from .exact import blockwise_neighbors, rerank, smallest


def candidates_count(n_neighbors: int) -> int:
    """How many candidates the projection proposes for k neighbors."""
    per_neighbor = config.get("neighbors.candidates-per-neighbor")
    extra = config.get("neighbors.min-extra-candidates")
    return max(per_neighbor * n_neighbors, n_neighbors + extra)


def principal_axes(X: da.Array, n_axes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top n_axes principal axes (D, n_axes) of X, from evenly spaced sample rows.

    At most ``neighbors.projected-sample-rows`` rows and ``neighbors.sample-bytes`` of them
    (but at least 4 rows per axis). One task gathers the sample and returns only the mean and
    the axes: the client never holds the sample.
    """
    n = X.shape[0]
    sample_bytes = config.get_bytes("neighbors.sample-bytes")
    sample_rows = min(
        config.get("neighbors.projected-sample-rows"),
        max(4 * n_axes, sample_bytes // (4 * X.shape[1])),
    )
    rows = np.unique(np.linspace(0, n - 1, min(n, sample_rows)).astype(np.int64))
    pieces = X[rows].to_delayed().ravel().tolist()
    by_covariance = X.shape[1] <= config.get("neighbors.covariance-max-dim")
    axes_of = dask.delayed(_axes_of_sample, pure=True)
    (result,) = compute(axes_of(pieces, n_axes, by_covariance), label="principal axes")
    return result


def _axes_of_sample(pieces: list, n_axes: int, by_covariance: bool) -> tuple:
    """Mean and axes of the sample: from its covariance (up to ``neighbors.covariance-max-dim``
    features), or else from a randomized SVD in float32."""
    centred = np.concatenate(pieces, axis=0, dtype=np.float64 if by_covariance else np.float32)
    del pieces
    mean = centred.mean(axis=0)
    centred -= mean
    if by_covariance:
        # eigenvectors of the sample covariance (D x D: cheaper than an SVD of the sample)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        return mean, np.ascontiguousarray(vectors[:, ::-1][:, :n_axes])
    from sklearn.utils.extmath import randomized_svd

    _, _, vt = randomized_svd(centred, n_axes, random_state=0)
    return mean.astype(np.float64), np.ascontiguousarray(vt.T.astype(np.float64))


def project(block: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Projection on the principal axes, in float32 (it only ranks candidates).

    A few thousand rows at a time: a centred copy of a whole partition would double it."""
    mean, axes = mean.astype(np.float32), axes.astype(np.float32)
    out = np.empty((block.shape[0], axes.shape[1]), dtype=np.float32)
    step = max(1, PROJECT_BYTES // (4 * max(1, block.shape[1])))
    for start in range(0, block.shape[0], step):
        rows = slice(start, start + step)
        np.matmul(np.asarray(block[rows], dtype=np.float32) - mean, axes, out=out[rows])
    return out


PROJECT_BYTES = 8 * 2**20  # centred rows per step of a projection


def fast_block_candidates(
    queries: np.ndarray, points: np.ndarray, points_offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest (distance, index) of each query among points, by scikit-learn's compiled
    brute-force top-k (float32 GEMM + heap, no n x n distance matrix kept)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, points.shape[0])
    dist, index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(points).kneighbors(queries)
    return smallest(dist, index.astype(np.int64) + points_offset, k)


def projected_candidates(X: da.Array, n_neighbors: int) -> da.Array:
    """Lazy (n, K) candidate neighbors (self excluded) found among the projected points."""
    n_candidates = min(candidates_count(n_neighbors), X.shape[0] - 1)
    mean, axes = principal_axes(X, min(config.get("neighbors.projected-dim"), X.shape[1]))
    Z = X.map_blocks(
        project, *shared(mean, axes), dtype=np.float32, chunks=(X.chunks[0], axes.shape[1])
    )
    rows = max(1, config.get_bytes("neighbors.projected-block-bytes") // (4 * axes.shape[1]))
    Z = Z.rechunk({0: rows})
    return blockwise_neighbors(Z, n_candidates, fast_block_candidates)


def projected_neighbors(X: da.Array, n_neighbors: int) -> da.Array:
    """Lazy (n, k): the projected candidates reranked by true distance in X.

    The candidates are computed here: the rerank plans its gather of rows from them.
    """
    (candidates,) = compute(projected_candidates(X, n_neighbors))
    return rerank(X, candidates, n_neighbors)
