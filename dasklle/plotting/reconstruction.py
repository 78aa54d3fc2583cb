"""What the weights do, point by point: a point beside its reconstruction from its neighbors, and
how well the same weights reconstruct it in the embedding."""

from __future__ import annotations

import os

import numpy as np

from ..metrics import sample_rows
from .style import pyplot, readable_ticks, save

# neighbors drawn per point in the reconstruction view (the largest weights)
SHOWN_NEIGHBORS = 6
# points measured by the weight-preservation view, and the most memory their rows and their
# neighbors' rows may take in float64 (fewer points for wide data: 3,700 at 784 features, k = 10)
PRESERVATION_SAMPLE = 20_000
PRESERVATION_BYTES = 256 * 2**20


def _rows(X, rows: np.ndarray) -> np.ndarray:
    """Rows of an array-like or a dask array, as float64, without reading the rest."""
    rows = np.asarray(rows)
    order = np.argsort(rows)
    taken = np.empty((len(rows), X.shape[1]))
    chunk = X[rows[order]]
    taken[order] = np.asarray(chunk.compute() if hasattr(chunk, "compute") else chunk)
    return taken


def _neighborhoods(X, neighbor_indices, weights, points):
    """The points' rows, their neighbors' rows (points x k x features) and their weights, read
    from X in one pass."""
    nbrs = neighbor_indices[points]
    needed, inverse = np.unique(np.concatenate([points, nbrs.ravel()]), return_inverse=True)
    values = _rows(X, needed)
    around = values[inverse[len(points) :]].reshape(*nbrs.shape, -1)
    return values[inverse[: len(points)]], around, weights[points]


def plot_reconstructions(
    X,
    neighbor_indices: np.ndarray,
    weights: np.ndarray,
    path: str | os.PathLike,
    *,
    n_points: int = 5,
    image_shape: tuple[int, int] | None = None,
    random_state: int = 0,
) -> None:
    """Sampled points beside their reconstruction from their neighbors with the fitted weights.

    Images (``image_shape``): one row per point with the point, its reconstruction and the
    neighbors of largest weight, each titled by its weight. Otherwise one panel per point: with
    at most 3 features, the point, its neighbors and the reconstruction in the first two
    features, lines as thick as the weights; with more, the point's feature values against the
    reconstruction's.

    Parameters
    ----------
    X : array-like or dask array of shape (n_samples, n_features)
        The data the weights were fitted on (only the rows drawn are read).
    neighbor_indices, weights : ndarray of shape (n_samples, n_neighbors)
        ``neighbor_indices_`` and ``weights_`` of a fitted estimator.
    path : str or path
        The PNG file to write.
    n_points : int, default=5
        Points drawn (a random sample).
    image_shape : (int, int), optional
        Height and width when each point is an image.
    random_state : int, default=0
        Seed of the sample.
    """
    if image_shape is not None and int(np.prod(image_shape)) != X.shape[1]:
        raise ValueError(
            f"--image-shape {image_shape[0]}x{image_shape[1]} does not match the data's "
            f"{X.shape[1]} features."
        )
    points = sample_rows(len(neighbor_indices), n_points, random_state)
    own, around, w = _neighborhoods(X, neighbor_indices, weights, points)
    nbrs = neighbor_indices[points]
    rebuilt = np.einsum("pk,pkd->pd", w, around)
    if image_shape is not None:
        _image_rows(own, rebuilt, around, w, points, nbrs, image_shape, path)
    else:
        _feature_panels(own, rebuilt, around, w, points, path)


def _image_rows(own, rebuilt, around, w, points, nbrs, shape, path) -> None:
    plt = pyplot()
    shown = min(SHOWN_NEIGHBORS, w.shape[1])
    fig, axes = plt.subplots(
        len(points),
        2 + shown,
        figsize=(1.3 * (2 + shown), 1.45 * len(points)),
        dpi=110,
        squeeze=False,
    )
    low, high = min(own.min(), around.min()), max(own.max(), around.max())
    for p, row in enumerate(axes):
        error = np.sum((own[p] - rebuilt[p]) ** 2) / max(np.sum(own[p] ** 2), 1e-300)
        cells = [(own[p], f"point {points[p]}"), (rebuilt[p], f"rebuilt ({error:.1%})")]
        for j in np.argsort(-np.abs(w[p]))[:shown]:
            cells.append((around[p, j], f"w={w[p, j]:+.2f}"))
        for ax, (image, caption) in zip(row, cells, strict=False):
            ax.imshow(image.reshape(shape), cmap="gray_r", vmin=low, vmax=high)
            ax.set_title(caption, fontsize=7)
        for ax in row:
            ax.axis("off")
    fig.suptitle(
        "Each point, its reconstruction from its neighbors (relative squared error) and the "
        "neighbors of largest weight",
        fontsize=8,
    )
    fig.tight_layout()
    save(fig, path)


def _feature_panels(own, rebuilt, around, w, points, path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(points), figsize=(3.2 * len(points), 3.2), dpi=110, squeeze=False
    )
    for p, ax in enumerate(axes[0]):
        if own.shape[1] <= 3:
            _geometry(ax, own[p], rebuilt[p], around[p], w[p])
        else:
            features = np.arange(own.shape[1])
            ax.plot(features, own[p], "-", color="k", lw=1.2, label="point")
            ax.plot(features, rebuilt[p], "--", color="tab:red", lw=1, label="rebuilt")
            ax.set_xlabel("feature")
            readable_ticks(ax)
        error = np.sum((own[p] - rebuilt[p]) ** 2) / max(np.sum(own[p] ** 2), 1e-300)
        ax.set_title(f"point {points[p]} (relative error {error:.1e})", fontsize=9)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=7, loc="lower center", ncol=len(names), frameon=False)
    fig.suptitle(
        "Points and their reconstructions from their neighbors (fitted weights)", fontsize=9
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save(fig, path)


def _geometry(ax, point, rebuilt, around, w) -> None:
    """The first two features: lines to the neighbors as thick as their weights (red: negative)."""
    width = 0.5 + 4 * np.abs(w) / max(np.abs(w).max(), 1e-300)
    for j in range(len(w)):
        colour = "tab:blue" if w[j] >= 0 else "tab:red"
        ax.plot(*np.c_[point[:2], around[j, :2]], "-", color=colour, lw=width[j], alpha=0.6)
        ax.annotate(
            f"{w[j]:.2f}", around[j, :2], fontsize=6, xytext=(2, 2), textcoords="offset points"
        )
    ax.scatter(*around[:, :2].T, s=14, color="0.4", label="neighbors", zorder=3)
    ax.scatter(*point[:2], s=40, color="k", marker="o", label="point", zorder=4)
    ax.scatter(*rebuilt[:2], s=60, color="tab:orange", marker="x", label="rebuilt", zorder=5)
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    ax.set_aspect("equal", adjustable="datalim")
    readable_ticks(ax)


def local_errors(values: np.ndarray, nbr_values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per point: |x - sum_j w_j x_j|^2 over the mean squared distance to its neighbors, so that
    input space and embedding compare on their own scales."""
    rebuilt = np.einsum("pk,pkd->pd", w, nbr_values)
    spread = np.mean(np.sum((nbr_values - values[:, None, :]) ** 2, axis=2), axis=1)
    return np.sum((values - rebuilt) ** 2, axis=1) / np.maximum(spread, 1e-300)


def plot_weight_preservation(
    X,
    embedding: np.ndarray,
    neighbor_indices: np.ndarray,
    weights: np.ndarray,
    path: str | os.PathLike,
    *,
    sample_size: int = PRESERVATION_SAMPLE,
    random_state: int = 0,
) -> None:
    """How well the weights that reconstruct each point in input space reconstruct it in the
    embedding: the two relative errors per point, as a scatter and as histograms.

    LLE chooses the embedding so that the same weights fit there too; points far above the
    diagonal are where the embedding does not keep the local geometry.

    Parameters
    ----------
    X : array-like or dask array of shape (n_samples, n_features)
        The data (the sampled points and their neighbors are read).
    embedding : ndarray of shape (n_samples, n_components)
        Its embedding.
    neighbor_indices, weights : ndarray of shape (n_samples, n_neighbors)
        ``neighbor_indices_`` and ``weights_`` of the fitted estimator.
    path : str or path
        The PNG file to write.
    sample_size : int, default=20000
        Points measured (a random sample); fewer when their rows and their neighbors' rows would
        take more than ``PRESERVATION_BYTES`` (256 MB) in float64.
    random_state : int, default=0
        Seed of the sample.
    """
    per_point = 8 * X.shape[1] * (neighbor_indices.shape[1] + 1)
    sample_size = max(1, min(sample_size, PRESERVATION_BYTES // per_point))
    points = sample_rows(len(neighbor_indices), sample_size, random_state)
    inside = local_errors(*_neighborhoods(X, neighbor_indices, weights, points))
    Y = np.asarray(embedding, dtype=np.float64)
    outside = local_errors(Y[points], Y[neighbor_indices[points]], weights[points])
    _preservation_figure(
        np.log10(np.maximum(inside, 1e-12)), np.log10(np.maximum(outside, 1e-12)), path
    )


def _preservation_figure(log_in, log_out, path) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.3), dpi=120)
    left.scatter(
        log_in,
        log_out,
        s=max(0.5, min(6, 5_000 / len(log_in))),
        alpha=0.4,
        linewidths=0,
        rasterized=True,
    )
    low = min(log_in.min(), log_out.min())
    high = max(log_in.max(), log_out.max())
    left.plot([low, high], [low, high], "--", color="tab:red", lw=1, label="same error")
    left.set_xlabel("log10 relative error in input space")
    left.set_ylabel("log10 relative error in the embedding")
    left.legend(fontsize=8)
    bins = np.linspace(low, high, 60)
    right.hist(log_in, bins=bins, alpha=0.6, label="input space")
    right.hist(log_out, bins=bins, alpha=0.6, label="embedding")
    right.set_xlabel("log10 relative reconstruction error")
    right.set_ylabel("points")
    right.legend(fontsize=8)
    worse = np.mean(log_out > log_in)
    fig.suptitle(
        f"The same weights in input space and in the embedding ({len(log_in):,} points; "
        f"medians {10 ** np.median(log_in):.2g} and {10 ** np.median(log_out):.2g}; "
        f"{worse:.0%} worse in the embedding)",
        fontsize=9,
    )
    fig.tight_layout()
    save(fig, path)
