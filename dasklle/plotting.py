"""Pictures of an embedding and its diagnostics (matplotlib, written to PNG; no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

# Above this many points a scatter becomes a density image (hexbin) coloured by the mean label,
# so a million points still give a readable picture and a small file.
DENSITY_ABOVE = 200_000
# M's sparsity pattern is drawn only up to this size (a spy plot of more rows is a grey square).
MATRIX_MAX_ROWS = 20_000


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_embedding(
    embedding: np.ndarray,
    path: str | os.PathLike,
    *,
    labels: np.ndarray | None = None,
    title: str = "",
) -> None:
    """The first two embedding coordinates, coloured by ``labels`` (if given).

    Up to ``DENSITY_ABOVE`` points: a rasterised scatter; beyond: a hexbin density image, coloured
    by the mean label of each cell when labels are given.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, n_components)
        The embedding.
    path : str or path
        The PNG file to write.
    labels : ndarray of shape (n_samples,), optional
        Colours: integer labels (a discrete palette up to 10 values) or a continuous value.
    title : str, default=""
        The title (default: one describing the plot).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=120)
    x = embedding[:, 0]
    y = embedding[:, 1] if embedding.shape[1] > 1 else np.zeros(len(embedding))
    discrete = labels is not None and np.issubdtype(np.asarray(labels).dtype, np.integer)
    cmap = "tab10" if discrete and np.unique(labels).size <= 10 else "Spectral"
    if len(embedding) > DENSITY_ABOVE:
        image = ax.hexbin(
            x,
            y,
            C=labels,
            gridsize=300,
            cmap=cmap if labels is not None else "viridis",
            bins=None if labels is not None else "log",
            mincnt=1,
            linewidths=0,
        )
    else:
        size = max(0.2, min(6.0, 20_000 / len(embedding)))
        colour = dict(c=labels, cmap=cmap) if labels is not None else {}
        image = ax.scatter(x, y, s=size, rasterized=True, linewidths=0, **colour)
    if labels is not None or len(embedding) > DENSITY_ABOVE:
        fig.colorbar(image, ax=ax, label="label" if labels is not None else "points (log)")
    ax.set_title(title or f"LLE embedding ({len(embedding):,} points)")
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)


def plot_spectrum(
    eigenvalues: Sequence[float], n_components: int, path: str | os.PathLike, *, title: str = ""
) -> None:
    """The bottom eigenvalues of M (log scale), with the cut-off after ``n_components``.

    Parameters
    ----------
    eigenvalues : sequence of float
        The eigenvalues, ascending (``eigenvalues_``).
    n_components : int
        Where to draw the cut-off.
    path : str or path
        The PNG file to write.
    title : str, default=""
        The title (default: one describing the plot).
    """
    plt = _pyplot()
    values = np.abs(np.asarray(eigenvalues, dtype=float))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    index = np.arange(1, len(values) + 1)
    ax.semilogy(index, np.maximum(values, 1e-300), "o-", ms=4)
    ax.axvline(n_components + 0.5, color="tab:red", ls="--", label=f"cut-off: {n_components} kept")
    ax.set_xlabel("eigenvalue index (above the constant vector's)")
    ax.set_ylabel("eigenvalue of M")
    ax.set_title(title or "Bottom of the spectrum of M")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)


def plot_cost_matrix(
    M: sp.sparray, path: str | os.PathLike, *, labels: np.ndarray | None = None
) -> None:
    """Draw M's sparsity pattern, rows and columns ordered by label.

    Blocks along the diagonal show label structure. Up to ``MATRIX_MAX_ROWS`` rows; a larger M
    is a ``ValueError``.

    Parameters
    ----------
    M : scipy sparse array of shape (n_samples, n_samples)
        The cost matrix (``get_cost_matrix()``).
    path : str or path
        The PNG file to write.
    labels : ndarray of shape (n_samples,), optional
        The order of rows and columns (stable sort by label).
    """
    if M.shape[0] > MATRIX_MAX_ROWS:
        raise ValueError(
            f"M has {M.shape[0]:,} rows; its pattern is drawn up to {MATRIX_MAX_ROWS:,} rows."
        )
    plt = _pyplot()
    order = np.argsort(labels, kind="stable") if labels is not None else np.arange(M.shape[0])
    coo = sp.csr_array(M)[order][:, order].tocoo()
    fig, ax = plt.subplots(figsize=(6, 6), dpi=120)
    ax.scatter(coo.col, coo.row, s=0.05, c="k", marker=".", rasterized=True, linewidths=0)
    if labels is not None and np.unique(labels).size <= 50:  # class labels, not a continuum
        bounds = np.flatnonzero(np.diff(np.asarray(labels)[order])) + 0.5
        for b in bounds:
            ax.axhline(b, color="tab:red", lw=0.3)
            ax.axvline(b, color="tab:red", lw=0.3)
    ax.set_xlim(0, M.shape[0])
    ax.set_ylim(M.shape[0], 0)
    ax.set_aspect("equal")
    ax.set_title("M = (I-W)^T (I-W), ordered by label" if labels is not None else "M")
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)


def plot_sweep(
    ks: Sequence[int], ds: Sequence[int], errors: np.ndarray, path: str | os.PathLike
) -> None:
    """Heatmap of log10 reconstruction error over n_neighbors x n_components.

    Parameters
    ----------
    ks, ds : sequence of int
        The n_neighbors and n_components values.
    errors : ndarray of shape (len(ks), len(ds))
        The reconstruction errors (:func:`dasklle.sweep.as_grid` gives all three).
    path : str or path
        The PNG file to write.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 * len(ds) + 3, 0.8 * len(ks) + 2), dpi=120)
    logs = np.log10(np.maximum(np.abs(errors), 1e-300))
    image = ax.imshow(logs, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(ds)), [str(d) for d in ds])
    ax.set_yticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel("n_components")
    ax.set_ylabel("n_neighbors")
    for i in range(len(ks)):
        for j in range(len(ds)):
            ax.text(j, i, f"{errors[i, j]:.1e}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(image, ax=ax, label="log10 reconstruction error")
    ax.set_title("Reconstruction error sweep")
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)
