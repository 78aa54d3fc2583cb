"""Pictures for choosing and checking: the spectrum of M, M's structure, the parameter sweep."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .style import categories, pyplot, save, text_colour

# M's sparsity pattern is drawn only up to this size (a spy plot of more rows is a grey square).
MATRIX_MAX_ROWS = 20_000


def plot_spectrum(
    eigenvalues: Sequence[float],
    n_components: int,
    path: str | os.PathLike,
    *,
    estimates: np.ndarray | None = None,
    title: str = "",
) -> None:
    """The bottom eigenvalues of M (log scale): the kept ones, the cut-off after
    ``n_components``, the solver's estimates beyond it, and the ratio of consecutive eigenvalues
    at the cut-off and where it is largest.

    A large ratio after j components says that the next direction costs much more to embed
    than the first j: a natural place to cut.

    Parameters
    ----------
    eigenvalues : sequence of float
        The eigenvalues, ascending (``eigenvalues_``).
    n_components : int
        Where to draw the cut-off.
    path : str or path
        The PNG file to write.
    estimates : ndarray of shape (m, 2), optional
        Further eigenvalues with their residuals (``eigenvalue_estimates_``), drawn hollow with
        the residual as error bar; those whose residual exceeds their value are left out.
    title : str, default=""
        The title (default: one describing the plot).
    """
    plt = pyplot()
    values = np.maximum(np.abs(np.asarray(eigenvalues, dtype=float)), 1e-300)
    extra = np.zeros((0, 2)) if estimates is None else np.asarray(estimates, float).reshape(-1, 2)
    good = extra[:, 1] < extra[:, 0]  # the rest: up to the first estimate vaguer than itself
    extra = extra[: len(extra) if good.all() else int(np.argmin(good))]
    every = np.concatenate([values, extra[:, 0]])
    index = np.arange(1, len(every) + 1)
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=120)
    ax.semilogy(index, every, "-", color="0.75", lw=1, zorder=1)
    kept = index <= n_components
    computed = (index <= len(values)) & ~kept
    ax.scatter(index[kept], every[kept], color="tab:blue", s=30, zorder=2, label="kept")
    if computed.any():
        ax.scatter(index[computed], every[computed], color="0.35", s=22, zorder=2, label="not kept")
    if len(extra):
        ax.errorbar(
            index[len(values) :],
            extra[:, 0],
            yerr=extra[:, 1],
            fmt="o",
            mfc="white",
            color="0.35",
            ms=5,
            lw=0.8,
            zorder=2,
            label="estimated (± residual)",
        )
    ax.axvline(n_components + 0.5, color="tab:red", ls="--", lw=1)
    _ratio_note(ax, every, n_components)
    ax.set_xticks(index if len(index) <= 25 else np.linspace(1, len(index), 6).astype(int))
    ax.set_xlabel("eigenvalue index (above the constant vector's)")
    ax.set_ylabel("eigenvalue of M")
    ax.set_title(title or f"Bottom of the spectrum of M ({n_components} kept)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save(fig, path)


def _ratio_note(ax, values: np.ndarray, n_components: int) -> None:
    """The ratio of each eigenvalue to the previous one, at the cut-off and at its largest."""
    ratios = values[1:] / values[:-1]
    notes = []
    if n_components < len(values):
        notes.append(f"after {n_components} (cut-off): x{ratios[n_components - 1]:.2f}")
    if len(ratios):
        j = int(np.argmax(ratios))
        notes.append(f"largest, after {j + 1}: x{ratios[j]:.2f}")
    if notes:
        ax.text(
            0.98,
            0.04,
            "next / previous eigenvalue\n" + "\n".join(notes),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            bbox=dict(fc="white", ec="0.8"),
        )


def plot_cost_matrix(
    M: sp.sparray, path: str | os.PathLike, *, labels: np.ndarray | None = None
) -> None:
    """Draw M's sparsity pattern, rows and columns ordered by label.

    Blocks along the diagonal show label structure; each block is named by its label. Up to
    ``MATRIX_MAX_ROWS`` rows; a larger M is a ``ValueError``.

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
    plt = pyplot()
    order = np.argsort(labels, kind="stable") if labels is not None else np.arange(M.shape[0])
    coo = sp.csr_array(M)[order][:, order].tocoo()
    fig, ax = plt.subplots(figsize=(6, 6), dpi=120)
    ax.scatter(coo.col, coo.row, s=0.05, c="k", marker=".", rasterized=True, linewidths=0)
    classes = categories(labels)
    if classes is not None:
        _name_blocks(ax, *classes, order)
    ax.set_xlim(0, M.shape[0])
    ax.set_ylim(M.shape[0], 0)
    ax.set_aspect("equal")
    ax.set_title("M = (I-W)^T (I-W), ordered by label" if labels is not None else "M")
    fig.tight_layout()
    save(fig, path)


def _name_blocks(ax, names, codes, order) -> None:
    """Lines between the label blocks and each block's name at its centre."""
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 0.5
    for b in bounds:
        ax.axhline(b, color="tab:red", lw=0.3)
        ax.axvline(b, color="tab:red", lw=0.3)
    edges = np.concatenate([[0], bounds, [len(order)]])
    centres = (edges[:-1] + edges[1:]) / 2
    present = [str(names[c]) for c in sorted_codes[np.concatenate([[0], bounds + 0.5]).astype(int)]]
    ax.set_xticks(centres, present, fontsize=8)
    ax.set_yticks(centres, present, fontsize=8)
    ax.tick_params(length=0)
    ax.set_xlabel("label")
    ax.set_ylabel("label")


def plot_sweep(
    ks: Sequence[int],
    ds: Sequence[int],
    errors: np.ndarray,
    path: str | os.PathLike,
    *,
    scores: np.ndarray | None = None,
    suggestion: tuple[int, int] | None = None,
) -> None:
    """The sweep over n_neighbors x n_components as heatmaps.

    With ``scores`` (the sampled neighborhood score, :func:`dasklle.sweep.as_grid`), the left
    map shows them, with the best n_neighbors of each column outlined and ``suggestion`` starred.
    The right map shows the reconstruction error, coloured within each column only: it grows
    with n_components by construction, so only the n_neighbors of one column compare.

    Parameters
    ----------
    ks, ds : sequence of int
        The n_neighbors and n_components values.
    errors : ndarray of shape (len(ks), len(ds))
        The reconstruction errors.
    path : str or path
        The PNG file to write.
    scores : ndarray of shape (len(ks), len(ds)), optional
        Mean of sampled trustworthiness and continuity per cell.
    suggestion : (int, int), optional
        The (n_neighbors, n_components) to mark.
    """
    plt = pyplot()
    panels = 2 if scores is not None and np.isfinite(scores).any() else 1
    width = 1.0 * len(ds) + 2.6
    fig, axes = plt.subplots(
        1, panels, figsize=(panels * width, 0.6 * len(ks) + 2.2), dpi=120, squeeze=False
    )
    if panels == 2:
        _score_map(axes[0, 0], ks, ds, scores, suggestion)
    _error_map(axes[0, -1], ks, ds, errors)
    fig.tight_layout()
    save(fig, path)


def _grid_axes(ax, ks, ds) -> None:
    ax.set_xticks(range(len(ds)), [str(d) for d in ds])
    ax.set_yticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel("n_components")
    ax.set_ylabel("n_neighbors")


def _annotate(ax, image, values, text) -> None:
    """Each cell's number in black or white, whichever reads on its colour."""
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            colour = text_colour(image.cmap(image.norm(image.get_array()[i, j])))
            ax.text(j, i, text(value), ha="center", va="center", fontsize=8, color=colour)


def _score_map(ax, ks, ds, scores, suggestion) -> None:
    from matplotlib.patches import Rectangle

    finite = scores[np.isfinite(scores)]
    low, high = np.percentile(finite, [5, 100]) if finite.size else (0, 1)
    image = ax.imshow(scores, cmap="viridis", aspect="auto", vmin=low, vmax=max(high, low + 1e-6))
    _annotate(ax, image, scores, lambda v: f"{v:.3f}")
    for j in range(len(ds)):
        column = scores[:, j]
        if np.isfinite(column).any():
            i = int(np.nanargmax(column))
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="white", lw=2))
    if suggestion is not None and suggestion[0] in ks and suggestion[1] in ds:
        i, j = ks.index(suggestion[0]), ds.index(suggestion[1])
        ax.plot(j + 0.32, i - 0.28, "*", ms=13, color="tab:red", mec="white")
    _grid_axes(ax, ks, ds)
    ax.set_title(
        "neighborhood score (higher is better)\nbox: best k per column; star: suggested", fontsize=9
    )
    ax.figure.colorbar(image, ax=ax, label="(trustworthiness + continuity) / 2")


def _error_map(ax, ks, ds, errors) -> None:
    logs = np.log10(np.maximum(np.abs(errors), 1e-300))
    # each column on its own scale: 0 = the smallest error in the column, 1 = the largest
    low, high = np.nanmin(logs, axis=0), np.nanmax(logs, axis=0)
    relative = (logs - low) / np.where(high > low, high - low, 1.0)
    image = ax.imshow(relative, cmap="magma_r", aspect="auto", vmin=0, vmax=1)
    _annotate(ax, image, errors, lambda v: f"{v:.1e}")
    _grid_axes(ax, ks, ds)
    ax.set_title("reconstruction error\n(colour compares within a column only)", fontsize=9)
    ax.figure.colorbar(image, ax=ax, label="within the column: low to high", ticks=[])
