"""Where the ``"amg"`` iteration runs: in this process or on a distributed cluster's workers
(``eigen.placement``), and whether a fit keeps its rows on the workers for it. Why ``"auto"``
chooses as it does: docs/design/eigen.md.
"""

from __future__ import annotations

import warnings

from .. import config
from .cost import CostOperator
from .resident import ResidentOperator


def choose_placement(solver: str, M) -> tuple[str, object]:
    """Where ``amg`` iterates, from ``eigen.placement``, and the distributed client if there.

    ``"auto"`` places it on the workers of the current distributed client, when M is a
    CostOperator or a ResidentOperator (the standard method), from ``eigen.workers-min-rows``
    rows on or when the solve would take more than half of this machine's available memory
    (``client_bytes``); below, this process is faster (docs/design/eigen.md).
    """
    from ..tasks.progress import distributed_client

    if solver != "amg":
        return "client", None
    asked = config.get("eigen.placement")
    client = distributed_client() if asked != "client" else None
    possible = client is not None and isinstance(M, CostOperator | ResidentOperator)
    if asked == "workers" and not possible:
        from ..exceptions import FallbackWarning

        warnings.warn(
            "eigen.placement='workers' needs a distributed client and the standard method; "
            "the amg solve runs in this process.",
            FallbackWarning,
            stacklevel=4,
        )
        return "client", None
    asked = _resolved(M.shape[0], possible)
    return asked, (client if asked == "workers" else None)


def _resolved(n: int, possible: bool) -> str:
    """``eigen.placement`` for n rows, ``"auto"`` resolved; ``possible``: whether a solve on
    the workers could run."""
    asked = config.get("eigen.placement")
    if asked == "auto":
        return "workers" if possible and _large(n) else "client"
    return asked if possible else "client"


def _large(n: int) -> bool:
    """Whether ``"auto"`` places an ``amg`` solve of n rows on the workers."""
    import psutil

    too_big = client_bytes(n) > psutil.virtual_memory().available / 2
    return n >= config.get("eigen.workers-min-rows") or too_big


def places_on_workers(solver: str, shape: tuple, n_components: int, method: str) -> bool:
    """Whether the eigen stage of a fit of data of ``shape`` will iterate on the workers (the
    fit then keeps the neighbor lists, the weights and B there, ``resident``)."""
    from ..tasks.progress import distributed_client
    from .solve import choose_solver

    n, n_features = shape
    amg = choose_solver(solver, n, n_features=n_features) == "amg"
    possible = method == "standard" and amg and n >= min_rows(n_components)
    return _resolved(n, possible and distributed_client() is not None) == "workers"


def min_rows(n_components: int) -> int:
    """Below this many rows, ``lobpcg`` and ``amg`` run ``dense`` (scipy's LOBPCG would)."""
    block = n_components + config.get("eigen.lobpcg-extra-vectors")
    return config.get("eigen.lobpcg-min-rows-per-vector") * block + 2


def client_bytes(n: int) -> int:
    """What an ``amg`` solve of n rows holds in this process (buffers, operator, hierarchy),
    scaled from its measured peak (docs/design/eigen.md)."""
    return int(n * 1_900)
