"""dasklle: Locally Linear Embedding that scales past one machine's memory, on Dask."""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("dasklle")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+unknown"

# Public names, imported on first use so that `import dasklle` and `dasklle --help` stay light.
_EXPORTS = {
    "LocallyLinearEmbedding": "dasklle.estimator",
    "locally_linear_embedding": "dasklle.estimator",
    "DisconnectedGraphWarning": "dasklle.exceptions",
    "EigenConvergenceWarning": "dasklle.exceptions",
    "FallbackWarning": "dasklle.exceptions",
    "InputError": "dasklle.exceptions",
}

__all__ = [*sorted(_EXPORTS), "__version__"]

if TYPE_CHECKING:  # names for type checkers; the real imports are lazy
    from .estimator import LocallyLinearEmbedding, locally_linear_embedding  # noqa: F401
    from .exceptions import (  # noqa: F401
        DisconnectedGraphWarning,
        EigenConvergenceWarning,
        FallbackWarning,
        InputError,
    )


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dasklle' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
