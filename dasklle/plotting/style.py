"""What every picture shares: the Agg backend, colours for labels, readable ticks, the frame."""

from __future__ import annotations

import os

import numpy as np

# Integer (or string) labels with at most this many values are categories: one colour each and a
# legend. More values, or floats, are a continuous colour scale.
MAX_CATEGORIES = 20


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | os.PathLike) -> None:
    fig.savefig(os.fspath(path))
    pyplot().close(fig)


def categories(labels) -> tuple[np.ndarray, np.ndarray] | None:
    """(names, codes) when the labels are categories, else None."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iubUSO":
        return None
    names, codes = np.unique(labels, return_inverse=True)
    return (names, codes) if len(names) <= MAX_CATEGORIES else None


def category_colours(count: int) -> np.ndarray:
    """RGBA rows: tab10 up to ten categories, tab20 up to twenty."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return np.array([cmap(k) for k in range(count)])


def readable_ticks(ax) -> None:
    """At most six ticks per axis; very small or large coordinates (an embedding of a million
    points has coordinates near 1e-3) get one shared power of ten instead of long labels."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=6))
        formatter = ScalarFormatter(useMathText=True)
        formatter.set_powerlimits((-2, 3))
        axis.set_major_formatter(formatter)


def frame(xy: np.ndarray) -> tuple[tuple[float, float], tuple[float, float], int]:
    """Axis limits holding every point, unless a few lie far out (beyond 3 times the span of the
    middle 99.8%): then the middle 99.8% with a wide margin. Also how many points fall outside,
    so that a few far outliers do not shrink the rest to a dot unannounced."""
    limits = []
    outside = np.zeros(len(xy), dtype=bool)
    for column in xy.T:
        low, high = np.quantile(column, [0.001, 0.999])
        full_low, full_high = column.min(), column.max()
        span = max(high - low, 1e-300)
        if (full_high - full_low) <= 3 * span:
            low, high, margin = full_low, full_high, 0.04
        else:
            margin = 0.25
        pad = margin * max(high - low, 1e-300)
        low, high = low - pad, high + pad
        outside |= (column < low) | (column > high)
        limits.append((float(low), float(high)))
    return limits[0], limits[1], int(outside.sum())


def text_colour(rgba) -> str:
    """Black on light cells, white on dark ones (relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"
