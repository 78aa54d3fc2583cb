"""Stage 5: the embedding and its metadata in a zarr store.

Layout of a store (a zarr group):

- ``embedding``: (n_samples, n_components) array, row-chunked;
- ``eigenvalues``: the bottom eigenvalues of M above the constant vector's;
- ``neighbors`` and ``weights`` (n_samples, n_neighbors): the graph and, for the standard method,
  the barycentric weights (W can be rebuilt from them);
- ``sweep`` attribute: a reconstruction-error sweep, when ``dasklle sweep`` wrote one here;
- group attributes: ``parameters``, ``eigenvalues``, ``reconstruction_error``, ``eigen_solver``
  (the one that ran), ``eigen_residual``, ``timings``, ``dasklle_version`` and ``complete``.

``complete`` is written last, after every array, so a store interrupted mid-write is never
mistaken for a finished one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import zarr

EMBEDDING = "embedding"
EIGENVALUES = "eigenvalues"
CHUNK_ROWS = 65536


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def write_embedding(
    path: str | os.PathLike,
    embedding: np.ndarray,
    eigenvalues: np.ndarray,
    attributes: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray | None] | None = None,
) -> zarr.Group:
    """Write an embedding store, replacing any store at ``path``; mark it complete last.

    ``arrays`` are further row-aligned arrays to keep (e.g. ``neighbors``, ``weights``). A sweep
    recorded in the old store is carried over (it does not depend on the embedding).
    """
    kept = {}
    if os.path.exists(os.fspath(path)):
        with contextlib.suppress(Exception):
            old = zarr.open_group(store=os.fspath(path), mode="r").attrs
            kept = {key: old[key] for key in ("sweep",) if key in old}
    group = zarr.open_group(store=os.fspath(path), mode="w")
    group.attrs["complete"] = False
    rows = min(CHUNK_ROWS, max(1, embedding.shape[0]))
    group.create_array(EMBEDDING, data=embedding, chunks=(rows, embedding.shape[1]))
    group.create_array(EIGENVALUES, data=np.asarray(eigenvalues, dtype=np.float64))
    for name, values in (arrays or {}).items():
        if values is not None:
            group.create_array(name, data=values, chunks=(rows,) + values.shape[1:])
    group.attrs.update({**kept, **_jsonable(dict(attributes))})
    group.attrs["complete"] = True
    return group


def read_embedding(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """The embedding and the attributes of a complete store."""
    try:
        group = zarr.open_group(store=os.fspath(path), mode="r")
    except Exception as exc:
        raise ValueError(
            f"store: cannot open {os.fspath(path)!r} as a dasklle store ({exc})."
        ) from exc
    attributes = dict(group.attrs)
    if not attributes.get("complete", False) or EMBEDDING not in group:
        raise ValueError(
            f"store: {os.fspath(path)!r} is not a complete dasklle store (interrupted or not "
            "written by dasklle); run the embedding again."
        )
    return np.asarray(group[EMBEDDING][...]), attributes


def read_array(path: str | os.PathLike, name: str) -> np.ndarray | None:
    """One array of a store, or None when the store does not hold it."""
    group = zarr.open_group(store=os.fspath(path), mode="r")
    return np.asarray(group[name][...]) if name in group else None


def read_attributes(path: str | os.PathLike) -> dict[str, Any]:
    """A store's attributes (complete or not)."""
    try:
        return dict(zarr.open_group(store=os.fspath(path), mode="r").attrs)
    except Exception as exc:
        raise ValueError(
            f"store: cannot open {os.fspath(path)!r} as a dasklle store ({exc})."
        ) from exc


def update_attributes(path: str | os.PathLike, attributes: Mapping[str, Any]) -> None:
    """Add attributes to a store (created if missing; arrays already in it are kept)."""
    group = zarr.open_group(store=os.fspath(path), mode="a")
    group.attrs.update(_jsonable(dict(attributes)))
