"""One self-contained HTML page of an embedding: a WebGL scatter with zoom, pan, colour by label
and hover (the point's index, its label and, for image data, the image).

The page needs no server and no network: the points, labels and images are inside it as base64
arrays next to the script (``page.js``) and the style of ``page.html``. ``#selftest`` at the end of
its address makes it hover over a point itself and report in its title (the browser test).
"""

from __future__ import annotations

import base64
import json
import os
from importlib import resources

import numpy as np

# Labels with at most this many distinct integer values are categories (a legend of colours);
# anything else is a continuous colour scale.
MAX_CATEGORIES = 256


def write_html(
    embedding: np.ndarray,
    path: str | os.PathLike,
    *,
    labels: np.ndarray | None = None,
    images: np.ndarray | None = None,
    image_rows: np.ndarray | None = None,
    image_shape: tuple[int, int] | None = None,
    title: str = "",
) -> int:
    """Write the page to ``path``; its size in bytes.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, n_components)
        The embedding; the first two coordinates are drawn.
    path : str or path
        The HTML file to write.
    labels : ndarray of shape (n_samples,), optional
        Integer categories (a legend) or continuous values (a colour scale).
    images : ndarray of shape (n_images, height * width), optional
        Pixel values of some or all points, shown on hover.
    image_rows : ndarray of shape (n_images,), optional
        The points ``images`` belong to (default: the first ``n_images``).
    image_shape : (int, int), optional
        Height and width of one image; required with ``images``.
    title : str, default=""
        The page's title.
    """
    n = len(embedding)
    xy = np.zeros((n, 2), dtype=np.float32)
    xy[:, : min(2, embedding.shape[1])] = embedding[:, :2]
    if not np.isfinite(xy).all():
        raise ValueError("view: the embedding holds non-finite values.")
    meta = {"n": n, "title": title or f"LLE embedding ({n:,} points)", "extent": _extent(xy)}
    blobs = {"points": xy}
    meta["palette"] = ["#1f77b4"]
    if labels is not None:
        meta["labels"], blobs["labels"] = _labels(np.asarray(labels), n)
        meta["palette"] = _palette(meta["labels"])
    if images is not None:
        meta["images"], blobs["images"], blobs["image_rows"] = _images(
            images, image_rows, image_shape, n
        )
    _write(path, meta, blobs)
    return os.path.getsize(path)


def _extent(xy: np.ndarray) -> list[float]:
    """The frame the page opens on: 0.5-99.5% of the points per axis, so outliers do not shrink
    the rest to a dot."""
    low, high = np.quantile(xy, [0.005, 0.995], axis=0) if len(xy) else np.zeros((2, 2))
    pad = 0.05 * np.maximum(high - low, 1e-12)
    return [
        float(low[0] - pad[0]),
        float(high[0] + pad[0]),
        float(low[1] - pad[1]),
        float(high[1] + pad[1]),
    ]


def _palette(labels: dict) -> list[str]:
    """Hex colours: matplotlib's tab10/tab20 for up to 20 categories, evenly spaced hues beyond,
    viridis for values."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    from ..plotting.style import MAX_CATEGORIES as MAX_PLOT_CATEGORIES
    from ..plotting.style import category_colours

    if labels["kind"] == "values":
        return [to_hex(c) for c in colormaps["viridis"](np.linspace(0, 1, 64))]
    count = len(labels["names"])
    if count <= MAX_PLOT_CATEGORIES:  # the colours of dasklle's PNGs
        return [to_hex(c) for c in category_colours(count)]
    return [to_hex(c) for c in colormaps["hsv"](np.linspace(0, 1, count, endpoint=False))]


def _labels(labels: np.ndarray, n: int) -> tuple[dict, np.ndarray]:
    """Category codes and names, or float values with their range."""
    if labels.shape != (n,):
        raise ValueError(f"view: labels have shape {labels.shape}; the embedding has {n:,} rows.")
    if labels.dtype.kind in "iub" or labels.dtype.kind in "US":
        names, codes = np.unique(labels, return_inverse=True)
        if len(names) <= MAX_CATEGORIES:
            return {"kind": "categories", "names": [str(v) for v in names]}, codes.astype(np.uint8)
    values = labels.astype(np.float32)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return {"kind": "values", "min": low, "max": high}, values


def _images(images, rows, shape, n) -> tuple[dict, np.ndarray, np.ndarray]:
    """Images as bytes scaled to 0-255 over all of them, and the points they belong to."""
    if shape is None or int(np.prod(shape)) != images.shape[1]:
        raise ValueError(
            f"view: --image-shape {shape} does not match {images.shape[1]} values per point."
        )
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    if len(rows) != len(images) or (len(rows) and (rows.min() < 0 or rows.max() >= n)):
        raise ValueError("view: the image rows do not match the embedding's rows.")
    values = images.astype(np.float32)
    low, high = float(values.min(initial=0.0)), float(values.max(initial=1.0))
    scaled = np.round(255 * (values - low) / max(high - low, 1e-12)).astype(np.uint8)
    meta = {"height": int(shape[0]), "width": int(shape[1]), "count": len(rows)}
    return meta, scaled, rows.astype(np.int32)


def _write(path, meta: dict, blobs: dict[str, np.ndarray]) -> None:
    """The page: the template with the metadata, the arrays and the script in place."""
    folder = resources.files(__package__)
    page = (folder / "page.html").read_text(encoding="utf-8")
    arrays = "\n".join(
        f'<script type="application/octet-stream" id="data-{name}">'
        f"{base64.b64encode(np.ascontiguousarray(array).tobytes()).decode('ascii')}</script>"
        for name, array in blobs.items()
    )
    meta_json = json.dumps(meta).replace("</", "<\\/")  # label names cannot close the script
    page = page.replace("{{TITLE}}", _escape(meta["title"]))
    page = page.replace("{{META}}", meta_json).replace("{{ARRAYS}}", arrays)
    page = page.replace("{{SCRIPT}}", (folder / "page.js").read_text(encoding="utf-8"))
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
