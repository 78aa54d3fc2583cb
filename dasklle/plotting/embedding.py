"""The embedding as a picture: a scatter up to a few hundred thousand points, a density image
beyond; categories with a legend, other labels with a colour bar."""

from __future__ import annotations

import os

import numpy as np

from .style import categories, category_colours, frame, pyplot, readable_ticks, save

# Above this many points a scatter becomes a density image: a million points still give a
# readable picture and a small file.
DENSITY_ABOVE = 200_000
# cells per side of the density image
DENSITY_GRID = 400


def plot_embedding(
    embedding: np.ndarray,
    path: str | os.PathLike,
    *,
    labels: np.ndarray | None = None,
    label_name: str = "label",
    title: str = "",
) -> None:
    """The first two embedding coordinates, coloured by ``labels`` (if given).

    Up to ``DENSITY_ABOVE`` points: a scatter drawn in a random order, its point size and
    transparency chosen by the number of points. Beyond: a density image (darker where more
    points fall; coloured by each cell's most frequent category, or by the mean value for
    continuous labels). Integer or string labels with at most 20 values get a legend; others a
    colour bar. The frame holds 99.8% of the points when a few lie far out (the title says how
    many are outside).

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, n_components)
        The embedding.
    path : str or path
        The PNG file to write.
    labels : ndarray of shape (n_samples,), optional
        Categories (integers or strings) or continuous values.
    label_name : str, default="label"
        What the labels are: the legend's title or the colour bar's label.
    title : str, default=""
        The title (default: one describing the plot).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=120)
    outside = draw_embedding(ax, embedding, labels=labels, label_name=label_name)
    note = f"; {outside:,} outside the frame" if outside else ""
    ax.set_title((title or f"LLE embedding ({len(embedding):,} points)") + note)
    fig.tight_layout()
    save(fig, path)


def draw_embedding(ax, embedding: np.ndarray, *, labels=None, label_name: str = "label") -> int:
    """Draw the embedding on ``ax`` as ``plot_embedding`` does; the number of points outside
    the frame."""
    xy = np.zeros((len(embedding), 2))
    xy[:, : min(2, embedding.shape[1])] = np.asarray(embedding)[:, :2]
    (x0, x1), (y0, y1), outside = frame(xy)
    classes = categories(labels)
    if len(xy) > DENSITY_ABOVE:
        _density(ax, xy, (x0, x1, y0, y1), labels, classes, label_name)
    else:
        _scatter(ax, xy, labels, classes, label_name)
    if classes is not None:
        _legend(ax, classes, label_name)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    readable_ticks(ax)
    return outside


def _scatter(ax, xy, labels, classes, label_name) -> None:
    n = len(xy)
    order = np.random.default_rng(0).permutation(n)  # no class painted over the others
    size = float(np.clip(30_000 / n, 0.5, 12.0))
    alpha = float(np.clip(np.sqrt(10_000 / n), 0.35, 0.9))
    style = dict(s=size, alpha=alpha, linewidths=0, rasterized=True)
    if classes is not None:
        colours = category_colours(len(classes[0]))[classes[1][order]]
        ax.scatter(*xy[order].T, c=colours, **style)
    elif labels is not None:
        image = ax.scatter(*xy[order].T, c=np.asarray(labels)[order], cmap="viridis", **style)
        ax.figure.colorbar(image, ax=ax, label=label_name)
    else:
        ax.scatter(*xy.T, color="tab:blue", **style)


def _density(ax, xy, extent, labels, classes, label_name) -> None:
    """Cells shaded by log(count); coloured by the majority category or the mean value."""
    x0, x1, y0, y1 = extent
    g = DENSITY_GRID
    col = np.clip(((xy[:, 0] - x0) / (x1 - x0) * g).astype(int), 0, g - 1)
    row = np.clip(((xy[:, 1] - y0) / (y1 - y0) * g).astype(int), 0, g - 1)
    cell = row * g + col
    counts = np.bincount(cell, minlength=g * g)
    shade = np.log1p(counts) / np.log1p(max(counts.max(), 1))
    strength = np.where(counts > 0, 0.3 + 0.7 * shade, 0.0)[:, None]
    if classes is not None:
        names, codes = classes
        votes = np.bincount(cell * len(names) + codes, minlength=g * g * len(names))
        majority = votes.reshape(g * g, len(names)).argmax(1)
        base = category_colours(len(names))[majority, :3]
    elif labels is not None:
        from matplotlib import colormaps

        sums = np.bincount(cell, weights=np.asarray(labels, dtype=float), minlength=g * g)
        mean = sums / np.maximum(counts, 1)
        low, high = np.nanpercentile(np.asarray(labels, dtype=float), [1, 99])
        base = colormaps["viridis"](np.clip((mean - low) / max(high - low, 1e-300), 0, 1))[:, :3]
        _value_bar(ax, low, high, f"{label_name} (cell mean)")
    else:
        base = np.tile([[0.12, 0.25, 0.55]], (g * g, 1))
    rgb = 1.0 - strength * (1.0 - base)  # white where empty, full colour where dense
    ax.imshow(
        rgb.reshape(g, g, 3), origin="lower", extent=extent, aspect="auto", interpolation="nearest"
    )


def _value_bar(ax, low, high, name) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    mappable = ScalarMappable(Normalize(low, high), "viridis")
    ax.figure.colorbar(mappable, ax=ax, label=name)


def _legend(ax, classes, label_name) -> None:
    from matplotlib.lines import Line2D

    names, codes = classes
    counts = np.bincount(codes, minlength=len(names))
    colours = category_colours(len(names))
    handles = [
        Line2D([], [], ls="", marker="o", ms=6, color=colours[k], label=f"{name} ({counts[k]:,})")
        for k, name in enumerate(names)
    ]
    ax.legend(
        handles=handles,
        title=label_name,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        fontsize=8,
        title_fontsize=9,
    )
