"""dasklle's tunables, as dask configuration under the ``dasklle`` namespace.

The defaults live in ``dasklle.yaml`` next to this module; every key there is documented in
``docs/configuration.md``. Change them as any dask setting::

    dask.config.set({"dasklle.neighbors.partition-rows": 50_000})

or from the environment (``DASK_DASKLLE__NEIGHBORS__PARTITION_ROWS=50000``), or in a YAML file in
``~/.config/dask/``.
"""

from __future__ import annotations

import pathlib
from typing import Any

import dask.config
import yaml
from dask.utils import parse_bytes

DEFAULTS_FILE = pathlib.Path(__file__).with_name("dasklle.yaml")

with DEFAULTS_FILE.open() as _file:
    defaults: dict[str, Any] = yaml.safe_load(_file)

# update_defaults keeps values already set by the user's files and environment
dask.config.update_defaults(defaults)

_MISSING = object()


def get(key: str) -> Any:
    """The current value of the setting ``dasklle.<key>`` (the user's, else the default).

    Parameters
    ----------
    key : str
        The key below ``dasklle``, e.g. ``"neighbors.partition-rows"``.
    """
    value = dask.config.get(f"dasklle.{key}", default=_MISSING)
    if value is _MISSING:
        # defaults first loaded inside a ``dask.config.set({"dasklle....": ...})`` block leave
        # with it (the block restores a config without them): merged again, under the user's
        dask.config.update_defaults(defaults)
        value = dask.config.get(f"dasklle.{key}")
    return value


def get_bytes(key: str) -> int:
    """``get(key)`` in bytes, an int: the value may be a number or a string such as ``"64 MiB"``."""
    return int(parse_bytes(get(key)))


def changed(section: str) -> dict[str, Any]:
    """The ``dasklle.<section>`` settings that differ from the shipped defaults.

    Part of a stage's checkpoint fingerprint: a result computed under other settings is not
    resumed, while runs at the defaults keep the fingerprints they always had.

    Parameters
    ----------
    section : str
        A section below ``dasklle``, e.g. ``"neighbors"``.

    Returns
    -------
    dict
        The changed keys (dash-separated) and their current values, sorted by key.
    """
    current = dask.config.get(f"dasklle.{section}", {}) or {}
    shipped = defaults["dasklle"].get(section) or {}
    canonical = {key.replace("_", "-"): value for key, value in current.items()}
    return {key: value for key, value in sorted(canonical.items()) if shipped.get(key) != value}
