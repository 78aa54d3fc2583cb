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
  (the one that ran), ``eigen_residual``, ``timings``, ``dasklle_version``, ``input_fingerprint``
  (``pipeline.input_fingerprint`` of the input the results were computed from) and ``complete``.

Every write clears a ``complete`` flag first and sets it last, after every array: a store or a
stage interrupted mid-write is never mistaken for a finished one, and is redone on the next run.

``check_output_store`` vets an output path before anything is computed: dasklle writes only to a
new path, an empty folder or a store it wrote from the same input, and empties (``clear_store``)
nothing but its own stores.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import config

if TYPE_CHECKING:
    import zarr

EMBEDDING = "embedding"
EIGENVALUES = "eigenvalues"
# Attributes that only dasklle writes: a group with one of them (or a stages group) is its store.
# Not "complete", which other tools' groups carry too (dasklle's own benchmark data sets do).
MARKERS = ("dasklle_version", "parameters", "input_fingerprint", "sweep")


def is_dasklle_store(node: Any) -> bool:
    """Whether a zarr node is a group that dasklle wrote."""
    import zarr

    return isinstance(node, zarr.Group) and (
        any(key in node.attrs for key in MARKERS) or "stages" in node
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no inf or nan
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def write_embedding(
    path: str | os.PathLike,
    embedding,
    eigenvalues: np.ndarray,
    attributes: Mapping[str, Any],
) -> zarr.Group:
    """Write the embedding (an ndarray, or a dask array written by its tasks) into a store
    (created if needed), marking it complete last.

    The ``stages`` checkpoints and a recorded ``sweep`` stay; older results are replaced.
    """
    import zarr

    group = zarr.open_group(store=os.fspath(path), mode="a")
    kept = {key: group.attrs[key] for key in ("sweep",) if key in group.attrs}
    group.attrs["complete"] = False
    for name in (EMBEDDING, EIGENVALUES):
        if name in group:
            del group[name]
    rows = min(config.get("store.chunk-rows"), max(1, embedding.shape[0]))
    if isinstance(embedding, np.ndarray):
        group.create_array(EMBEDDING, data=embedding, chunks=(rows, embedding.shape[1]))
    else:  # a dask array: written by the tasks that hold it
        _store_rows(group, EMBEDDING, embedding, rows)
    group.create_array(EIGENVALUES, data=np.asarray(eigenvalues, dtype=np.float64))
    group.attrs.put({**kept, **_jsonable(dict(attributes)), "complete": False})
    group.attrs["complete"] = True
    return group


class Checkpoints:
    """Stage results kept in a store's ``stages`` group, each with its fingerprint.

    ``load`` returns a stage's arrays and attributes only when the stage is complete and was
    produced from the same fingerprint (never with ``resume=False``); ``save`` marks the store
    incomplete, rewrites the stage and marks the stage complete last. With ``overwrite``,
    ``begin`` empties the store first.
    """

    def __init__(self, path: str | os.PathLike, *, resume: bool = True, overwrite: bool = False):
        self.path = os.fspath(path)
        self.resume = resume
        self.overwrite = overwrite

    def load(self, stage: str, fingerprint: str, lazy: bool = False) -> dict[str, Any] | None:
        """The stage's arrays (zarr arrays, read on demand, when ``lazy``) and attributes."""
        group = self._complete_group(stage, fingerprint)
        if group is None:
            return None
        read = (lambda array: array) if lazy else (lambda array: np.asarray(array[...]))
        arrays = {name: read(array) for name, array in group.arrays()}
        return {"attributes": dict(group.attrs), **arrays}

    def _complete_group(self, stage: str, fingerprint: str):
        """The stage's group if it is complete and of this fingerprint (and resuming), or None."""
        import zarr

        if not self.resume:
            return None
        try:
            group = zarr.open_group(store=self.path, mode="r")[f"stages/{stage}"]
        except Exception:  # no store, no stages group or no such stage
            return None
        attributes = group.attrs
        if not attributes.get("complete") or attributes.get("fingerprint") != fingerprint:
            return None
        return group

    def _partial_progress(self, stage: str, fingerprint: str, slot: str) -> int:
        """How far the state in a slot had got (-1: none), read from its attributes alone."""
        group = self._complete_group(f"{stage}-partial-{slot}", fingerprint)
        return -1 if group is None else int(group.attrs.get("progress", 0))

    def save(
        self,
        stage: str,
        fingerprint: str,
        arrays: Mapping[str, np.ndarray],
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        import zarr

        root = zarr.open_group(store=self.path, mode="a")
        root.attrs["complete"] = False
        stages = root.require_group("stages")
        if stage in stages:
            del stages[stage]
        group = stages.create_group(stage)
        group.attrs.put({"complete": False, "fingerprint": fingerprint})
        for name, values in arrays.items():
            rows = min(config.get("store.chunk-rows"), max(1, values.shape[0]))
            if isinstance(values, np.ndarray):
                group.create_array(name, data=values, chunks=(rows,) + values.shape[1:])
            else:  # a dask array: its chunks are written where they are
                _store_rows(group, name, values, rows)
        group.attrs.update({**_jsonable(dict(attributes or {})), "complete": True})
        if "-partial-" not in stage:  # the stage is done: its unfinished states go
            for slot in "ab":
                if f"{stage}-partial-{slot}" in stages:
                    del stages[f"{stage}-partial-{slot}"]

    def save_partial(self, stage: str, fingerprint: str, arrays, attributes) -> None:
        """Keep the state of an unfinished stage, in two slots written in turn: a run killed
        while writing one still finds the other complete."""
        older = min("ab", key=lambda slot: self._partial_progress(stage, fingerprint, slot))
        self.save(f"{stage}-partial-{older}", fingerprint, arrays, attributes)

    def load_partial(self, stage: str, fingerprint: str) -> dict[str, Any] | None:
        """The furthest complete state of an unfinished stage, or None."""
        furthest = max("ab", key=lambda slot: self._partial_progress(stage, fingerprint, slot))
        return self.load(f"{stage}-partial-{furthest}", fingerprint)

    def begin(self, input_fingerprint: str) -> None:
        """Start a run: empty the store if asked to, mark it incomplete and record the input."""
        import zarr

        if self.overwrite:
            clear_store(self.path)
        from .. import __version__

        group = zarr.open_group(store=self.path, mode="a")
        group.attrs.update(
            {
                "complete": False,
                "dasklle_version": __version__,
                "input_fingerprint": input_fingerprint,
            }
        )


def _store_rows(group, name: str, values, rows: int) -> None:
    """A dask array written into a new array of the group by the tasks that hold its chunks,
    rechunked to whole chunks of ``rows`` rows (no two tasks write one chunk)."""
    import dask.array as da

    from ..tasks import progress

    target = group.create_array(
        name, shape=values.shape, dtype=values.dtype, chunks=(rows,) + values.shape[1:]
    )
    aligned = values.rechunk((rows,) + values.shape[1:])
    progress.compute(da.store(aligned, target, lock=False, compute=False), label=f"save {name}")


def read_embedding(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """The embedding and the attributes of a complete store."""
    import zarr

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


def lazy_embedding(path: str | os.PathLike):
    """The embedding of a store as a dask array read chunk by chunk."""
    import dask.array as da
    import zarr

    return da.from_zarr(zarr.open_group(store=os.fspath(path), mode="r")[EMBEDDING])


def read_array(path: str | os.PathLike, name: str) -> np.ndarray | None:
    """One array of a store (e.g. ``stages/weights/weights``), or None when it is not there."""
    import zarr

    try:
        return np.asarray(zarr.open_group(store=os.fspath(path), mode="r")[name][...])
    except KeyError:
        return None


def finished_stages(path: str | os.PathLike) -> list[str]:
    """The complete stages a store keeps, in pipeline order ("eigen at iteration N" for a saved
    unfinished solve); [] when there is no store."""
    import zarr

    try:
        stages = zarr.open_group(store=os.fspath(path), mode="r")["stages"]
    except Exception:  # no store, or no stages yet
        return []
    done = {name: group.attrs for name, group in stages.groups() if group.attrs.get("complete")}
    kept = [name for name in done if "-partial-" not in name]
    order = ["neighbors", "weights", "assemble", "eigen"]
    kept.sort(key=lambda name: order.index(name) if name in order else len(order))
    partial = [int(a.get("progress", 0)) for name, a in done.items() if "-partial-" in name]
    if partial and "eigen" not in kept:
        kept.append(f"eigen at iteration {max(partial)}")
    return kept


def read_attributes(path: str | os.PathLike) -> dict[str, Any]:
    """A store's attributes (complete or not)."""
    import zarr

    try:
        return dict(zarr.open_group(store=os.fspath(path), mode="r").attrs)
    except Exception as exc:
        raise ValueError(
            f"store: cannot open {os.fspath(path)!r} as a dasklle store ({exc})."
        ) from exc


def update_attributes(path: str | os.PathLike, attributes: Mapping[str, Any]) -> None:
    """Add attributes to a store (created if missing; arrays already in it are kept)."""
    import zarr

    group = zarr.open_group(store=os.fspath(path), mode="a")
    group.attrs.update(_jsonable(dict(attributes)))


def check_output_store(
    path: str | os.PathLike,
    input_fingerprint: str | Callable[[], str] | None = None,
    *,
    name: str = "store",
    overwrite: bool = False,
) -> None:
    """Refuse an output path dasklle must not write to, before anything is computed.

    Parameters
    ----------
    path : str or path-like
        Where the store is to be written.
    input_fingerprint : str, callable or None, default=None
        ``pipeline.input_fingerprint`` of the input, or a function that computes it (called
        only for a store that records another fingerprint). When given, a store holding
        results (an embedding or stage checkpoints) of another input is refused unless
        ``overwrite``.
    name : str, default="store"
        The parameter the path came from, as the caller knows it (``store``, ``--out``).
    overwrite : bool, default=False
        Whether the run will empty an existing dasklle store first.

    Raises
    ------
    ValueError
        With one sentence naming ``name`` and the path, for an existing file; a folder that is
        neither empty nor a dasklle store; a location that cannot be written (a parent that is
        a file, a read-only folder); results of another input without ``overwrite``.
    """
    where = f"{name} {os.fspath(path)!r}"
    full = os.path.abspath(os.fspath(path))
    if os.path.isdir(full):
        if os.listdir(full):
            group = _dasklle_group(full, where, name)
            _check_same_input(group, input_fingerprint, where, name, overwrite)
        _check_writable(full, where)
    elif os.path.lexists(full):
        raise ValueError(
            f"{where} is an existing file, not a zarr store; choose another path (dasklle never "
            f"replaces a file, even with {_overwrite_flag(name)})."
        )
    else:
        _check_writable(_nearest_existing(full), where)


def clear_store(path: str | os.PathLike, name: str = "store") -> None:
    """Empty a dasklle store (refusing anything else), leaving an incomplete dasklle store."""
    import zarr

    from .. import __version__

    check_output_store(path, name=name, overwrite=True)
    group = zarr.open_group(store=os.fspath(path), mode="w")
    group.attrs.put({"complete": False, "dasklle_version": __version__})


def _overwrite_flag(name: str) -> str:
    return "--overwrite" if name.startswith("-") else "overwrite=True"


def _dasklle_group(path: str, where: str, name: str) -> zarr.Group:
    """The zarr group at a non-empty folder, if dasklle wrote it; else a ValueError."""
    import zarr

    try:
        node = zarr.open(store=path, mode="r")
    except Exception:  # no zarr metadata here (zarr raises several types)
        node = None
    if is_dasklle_store(node):
        return node
    what = "a folder" if node is None else f"a zarr {type(node).__name__.lower()}"
    raise ValueError(
        f"{where} is {what} not written by dasklle; choose a new path or an empty folder "
        f"(dasklle never deletes it, even with {_overwrite_flag(name)})."
    )


def _check_same_input(
    group: zarr.Group,
    input_fingerprint: str | Callable[[], str] | None,
    where: str,
    name: str,
    overwrite: bool,
) -> None:
    recorded = group.attrs.get("input_fingerprint")
    # Stores written before fingerprints were recorded are left to the stages' own fingerprints.
    if input_fingerprint is None or overwrite or recorded is None:
        return
    if callable(input_fingerprint):
        input_fingerprint = input_fingerprint()
    if recorded == input_fingerprint:
        return
    if EMBEDDING in group or "stages" in group:
        raise ValueError(
            f"{where} holds results of a different input; pass {_overwrite_flag(name)} to "
            "replace them or choose another path."
        )


def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def _check_writable(folder: str, where: str) -> None:
    """Create and remove a probe file: permission bits do not tell (root writes anyway)."""
    if not os.path.isdir(folder):
        raise ValueError(f"{where} cannot be created: {folder!r} is a file, not a folder.")
    try:
        handle, probe = tempfile.mkstemp(prefix=".dasklle-probe-", dir=folder)
    except OSError as exc:
        raise ValueError(
            f"{where} is not writable: cannot create a file in {folder!r} ({exc.strerror or exc})."
        ) from None
    os.close(handle)
    os.remove(probe)
