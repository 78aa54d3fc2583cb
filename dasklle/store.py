"""Stage 5: the embedding and its metadata in a zarr store.

Layout of a store (a zarr group):

- ``embedding``: (n_samples, n_components) array, row-chunked;
- ``eigenvalues``: the bottom eigenvalues of M above the constant vector's;
- ``stages/<stage>``: each stage's result, a checkpoint to resume from — ``neighbors``
  (``indices``), ``weights`` (``weights`` for the standard method; M's CSR arrays for the others)
  and ``eigen`` (``vectors``, ``values``) — with attributes ``fingerprint`` (a hash of the input
  sample and every parameter the stage depends on) and ``complete``;
- ``sweep`` attribute: a reconstruction-error sweep, when ``dasklle sweep`` wrote one here;
- group attributes: ``parameters``, ``eigenvalues``, ``reconstruction_error``, ``eigen_solver``
  (the one that ran), ``eigen_residual``, ``timings``, ``dasklle_version`` and ``complete``.

Every write clears a ``complete`` flag first and sets it last, after every array: a store or a
stage interrupted mid-write is never mistaken for a finished one, and is redone on the next run.
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
) -> zarr.Group:
    """Write the embedding into a store (created if needed), marking it complete last.

    The ``stages`` checkpoints and a recorded ``sweep`` stay; older results are replaced.
    """
    group = zarr.open_group(store=os.fspath(path), mode="a")
    kept = {key: group.attrs[key] for key in ("sweep",) if key in group.attrs}
    group.attrs["complete"] = False
    for name in (EMBEDDING, EIGENVALUES):
        if name in group:
            del group[name]
    rows = min(CHUNK_ROWS, max(1, embedding.shape[0]))
    group.create_array(EMBEDDING, data=embedding, chunks=(rows, embedding.shape[1]))
    group.create_array(EIGENVALUES, data=np.asarray(eigenvalues, dtype=np.float64))
    group.attrs.put({**kept, **_jsonable(dict(attributes)), "complete": False})
    group.attrs["complete"] = True
    return group


class Checkpoints:
    """Stage results kept in a store's ``stages`` group, each with its fingerprint.

    ``load`` returns a stage's arrays and attributes only when the stage is complete and was
    produced from the same fingerprint; ``save`` marks the store incomplete, rewrites the stage
    and marks the stage complete last.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    def load(self, stage: str, fingerprint: str) -> dict[str, Any] | None:
        try:
            group = zarr.open_group(store=self.path, mode="r")[f"stages/{stage}"]
        except Exception:  # no store, no stages group or no such stage
            return None
        attributes = dict(group.attrs)
        if not attributes.get("complete") or attributes.get("fingerprint") != fingerprint:
            return None
        arrays = {name: np.asarray(array[...]) for name, array in group.arrays()}
        return {"attributes": attributes, **arrays}

    def save(
        self,
        stage: str,
        fingerprint: str,
        arrays: Mapping[str, np.ndarray],
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        root = zarr.open_group(store=self.path, mode="a")
        root.attrs["complete"] = False
        stages = root.require_group("stages")
        if stage in stages:
            del stages[stage]
        group = stages.create_group(stage)
        group.attrs.put({"complete": False, "fingerprint": fingerprint})
        for name, values in arrays.items():
            rows = min(CHUNK_ROWS, max(1, values.shape[0]))
            group.create_array(name, data=values, chunks=(rows,) + values.shape[1:])
        group.attrs.update({**_jsonable(dict(attributes or {})), "complete": True})

    def begin(self) -> None:
        """Mark the store incomplete before a run that will rewrite its results."""
        if os.path.exists(self.path):
            with contextlib.suppress(Exception):
                zarr.open_group(store=self.path, mode="a").attrs["complete"] = False


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
    """One array of a store (e.g. ``stages/weights/weights``), or None when it is not there."""
    try:
        return np.asarray(zarr.open_group(store=os.fspath(path), mode="r")[name][...])
    except KeyError:
        return None


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
