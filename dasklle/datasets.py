"""Deterministic, chunked data generators: swiss roll, s-curve and "digits-784".

Every generator produces its rows in fixed blocks of ``GENERATOR_BLOCK`` rows, block ``b`` drawn
from ``numpy.random.default_rng([random_state, b])``; the rows are therefore the same whatever the
requested chunking or scheduler, and a million rows can be written to zarr without ever being
held in memory together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

import dask
import dask.array as da
import numpy as np

from .tasks.progress import compute

GENERATOR_BLOCK = 16384
DIGIT_SIDE = 28
_DIGIT_BOX = 20  # MNIST-style: the digit fills a 20 x 20 box centred in 28 x 28


def _generated(
    make_block: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]],
    n_samples: int,
    n_features: int,
    dtype,
    label_dtype,
    random_state: int,
    chunks: int | None,
) -> tuple[da.Array, da.Array]:
    if not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
    X_parts, label_parts = [], []
    for b, start in enumerate(range(0, n_samples, GENERATOR_BLOCK)):
        rows = min(GENERATOR_BLOCK, n_samples - start)
        block = dask.delayed(_draw_block, pure=True, nout=2)(make_block, random_state, b, rows)
        X_parts.append(da.from_delayed(block[0], (rows, n_features), dtype=dtype))
        label_parts.append(da.from_delayed(block[1], (rows,), dtype=label_dtype))
    X = da.concatenate(X_parts)
    labels = da.concatenate(label_parts)
    if chunks is not None:
        X = X.rechunk({0: chunks, 1: -1})
        labels = labels.rechunk(chunks)
    return X, labels


def _draw_block(make_block, random_state: int, block: int, rows: int):
    return make_block(np.random.default_rng([random_state, block]), rows)


def _swiss_roll_block(rng: np.random.Generator, rows: int, noise: float):
    t = 1.5 * np.pi * (1 + 2 * rng.random(rows))
    height = 21 * rng.random(rows)
    X = np.column_stack([t * np.cos(t), height, t * np.sin(t)])
    X += noise * rng.standard_normal(X.shape)
    return X, t


def _s_curve_block(rng: np.random.Generator, rows: int, noise: float):
    t = 3 * np.pi * (rng.random(rows) - 0.5)
    height = 2 * rng.random(rows)
    X = np.column_stack([np.sin(t), height, np.sign(t) * (np.cos(t) - 1)])
    X += noise * rng.standard_normal(X.shape)
    return X, t


def swiss_roll(
    n_samples: int, *, noise: float = 0.0, random_state: int = 0, chunks: int | None = None
) -> tuple[da.Array, da.Array]:
    """The 3-D swiss roll, and the position of each point along it.

    Parameters
    ----------
    n_samples : int
        Number of points.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to X.
    random_state : int, default=0
        Seed; the rows do not depend on ``chunks``.
    chunks : int or None, default=None
        Rows per dask block (default: the generator's own blocks).

    Returns
    -------
    X : dask array of shape (n_samples, 3)
        The points, float64.
    t : dask array of shape (n_samples,)
        The position along the roll.
    """
    block = _bind(_swiss_roll_block, noise=noise)
    return _generated(block, n_samples, 3, np.float64, np.float64, random_state, chunks)


def s_curve(
    n_samples: int, *, noise: float = 0.0, random_state: int = 0, chunks: int | None = None
) -> tuple[da.Array, da.Array]:
    """The 3-D S-curve, and the position ``t`` of each point along it.

    Parameters and returns as for :func:`swiss_roll`.
    """
    block = _bind(_s_curve_block, noise=noise)
    return _generated(block, n_samples, 3, np.float64, np.float64, random_state, chunks)


class _bind:
    """A picklable partial (tokenised by value, so dask keys are deterministic)."""

    def __init__(self, func, **kwargs):
        self.func, self.kwargs = func, kwargs

    def __call__(self, rng, rows):
        return self.func(rng, rows, **self.kwargs)

    def __dask_tokenize__(self):
        return (self.func.__module__, self.func.__qualname__, sorted(self.kwargs.items()))


@cache
def _digit_templates() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 real 8x8 digits (shipped in its wheel), upsampled to 28 x 28."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float64) / 16.0
    box = zoom(images, (1, _DIGIT_BOX / 8, _DIGIT_BOX / 8), order=1, grid_mode=True, mode="nearest")
    pad = (DIGIT_SIDE - _DIGIT_BOX) // 2
    templates = np.zeros((len(images), DIGIT_SIDE, DIGIT_SIDE))
    templates[:, pad : pad + _DIGIT_BOX, pad : pad + _DIGIT_BOX] = np.clip(box, 0, 1)
    return templates, digits.target.astype(np.int64)


def deform_digits(
    templates: np.ndarray,
    angle: np.ndarray,
    scale: np.ndarray,
    shear: np.ndarray,
    shift: np.ndarray,
) -> np.ndarray:
    """Apply one affine map per image (about the image centre), bilinear, in one vectorised call.

    Parameters
    ----------
    templates : ndarray of shape (m, 28, 28)
        The images.
    angle, scale, shear : ndarray of shape (m,)
        Rotation (radians), scale factor and shear of each image.
    shift : ndarray of shape (m, 2)
        Shift of each image in pixels (rows, columns).

    Returns
    -------
    ndarray of shape (m, 784)
        The deformed images, flattened.
    """
    from scipy.ndimage import map_coordinates

    m = templates.shape[0]
    centre = (DIGIT_SIDE - 1) / 2
    r, c = np.meshgrid(
        np.arange(DIGIT_SIDE) - centre, np.arange(DIGIT_SIDE) - centre, indexing="ij"
    )
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    s, h = scale[:, None, None], shear[:, None, None]
    # Inverse map: output pixel -> source pixel.
    src_r = (cos * r - sin * c) / s + centre - shift[:, 0, None, None]
    src_c = (sin * r + cos * c + h * r) / s + centre - shift[:, 1, None, None]
    layer = np.broadcast_to(np.arange(m)[:, None, None], src_r.shape)
    out = map_coordinates(templates, [layer, src_r, src_c], order=1, mode="constant", cval=0.0)
    return out.reshape(m, DIGIT_SIDE * DIGIT_SIDE)


def _digits_block(rng: np.random.Generator, rows: int):
    templates, targets = _digit_templates()
    pick = rng.integers(0, len(templates), rows)
    angle = np.deg2rad(rng.uniform(-15, 15, rows))
    scale = rng.uniform(0.9, 1.1, rows)
    shear = rng.uniform(-0.2, 0.2, rows)
    shift = rng.uniform(-2, 2, (rows, 2))
    images = deform_digits(templates[pick], angle, scale, shear, shift)
    return images.astype(np.float32), targets[pick]


def digits_784(
    n_samples: int, *, random_state: int = 0, chunks: int | None = None
) -> tuple[da.Array, da.Array]:
    """Real 8x8 digits upsampled to 28x28 and randomly deformed (infinite-MNIST style).

    Each row is one of scikit-learn's 1,797 digits, rotated, scaled, sheared and shifted at
    random. Parameters as for :func:`swiss_roll`, without ``noise``.

    Returns
    -------
    X, labels : dask arrays of shape (n_samples, 784) and (n_samples,)
        The images, float32 in [0, 1], and their digits, int64.
    """
    return _generated(
        _digits_block, n_samples, DIGIT_SIDE**2, np.float32, np.int64, random_state, chunks
    )


GENERATORS = {"swiss_roll": swiss_roll, "s_curve": s_curve, "digits_784": digits_784}


def make(name: str, n_samples: int, *, random_state: int = 0, chunks: int | None = None):
    """Generate a named data set.

    Parameters
    ----------
    name : {"swiss_roll", "s_curve", "digits_784"}
        The generator.
    n_samples, random_state, chunks
        As for the generator.

    Returns
    -------
    X, y : dask arrays
        The data and the generator's second output (position or label).
    """
    if name not in GENERATORS:
        raise ValueError(f"dataset must be one of {sorted(GENERATORS)}; got {name!r}.")
    return GENERATORS[name](n_samples, random_state=random_state, chunks=chunks)


def write_zarr(
    path: str | os.PathLike, X: da.Array, labels: da.Array | None = None, *, chunk_rows: int = 16384
) -> None:
    """Stream a generated data set into a zarr group: arrays ``X`` and ``labels``.

    Each dask block is aligned with one zarr chunk, so blocks are written in parallel without locks.

    Parameters
    ----------
    path : str or path
        The zarr group to create (an existing one is replaced).
    X : dask array of shape (n_samples, n_features)
        The data.
    labels : dask array of shape (n_samples,), optional
        Written as ``labels`` when given.
    chunk_rows : int, default=16384
        Rows per zarr chunk.
    """
    import zarr

    group = zarr.open_group(store=os.fspath(path), mode="w")
    X = X.rechunk({0: chunk_rows, 1: -1})
    sources, targets = (
        [X],
        [group.create_array("X", shape=X.shape, dtype=X.dtype, chunks=X.chunksize)],
    )
    if labels is not None:
        labels = labels.rechunk(chunk_rows)
        sources.append(labels)
        targets.append(
            group.create_array(
                "labels", shape=labels.shape, dtype=labels.dtype, chunks=labels.chunksize
            )
        )
    compute(da.store(sources, targets, lock=False, compute=False))
