"""Pictures of an embedding (matplotlib, written to PNG; no display needed)."""

from __future__ import annotations

import os

import numpy as np

# Above this many points a scatter is rasterised with small markers so the file stays small.
DENSE_SCATTER = 50_000


def plot_embedding(
    embedding: np.ndarray,
    path: str | os.PathLike,
    *,
    labels: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Scatter the first two embedding coordinates, coloured by ``labels`` (if given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    y = embedding[:, 1] if embedding.shape[1] > 1 else np.zeros(len(embedding))
    size = 0.5 if len(embedding) > DENSE_SCATTER else 4
    points = ax.scatter(
        embedding[:, 0], y, c=labels, s=size, cmap="Spectral", rasterized=True, linewidths=0
    )
    if labels is not None:
        fig.colorbar(points, ax=ax)
    ax.set_title(title or f"LLE embedding ({len(embedding):,} points)")
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)
