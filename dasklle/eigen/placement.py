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
    rows on, or when the solve would hold more than a worker may or more than half of this
    machine's available memory (``_large``); below, this process is faster
    (docs/design/eigen.md).
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
    asked = _resolved(M.shape[0], client if possible else None)
    return asked, (client if asked == "workers" else None)


def _resolved(n: int, client) -> str:
    """``eigen.placement`` for n rows, ``"auto"`` resolved; ``client``: the distributed client
    a solve on the workers would run on, None where it could not run."""
    asked = config.get("eigen.placement")
    if client is None:
        return "client"
    return ("workers" if _large(n, client) else "client") if asked == "auto" else asked


def _large(n: int, client) -> bool:
    """Whether ``"auto"`` places an ``amg`` solve of n rows on the workers: from the rows where
    they iterate as fast as this process, or when this process would hold more than one of
    the cluster's workers may (its processes are sized by that limit) or more than half of
    this machine's available memory."""
    import psutil

    held = client_bytes(n)
    too_big = held > min(psutil.virtual_memory().available / 2, _worker_limit(client))
    return n >= config.get("eigen.workers-min-rows") or too_big


def _worker_limit(client) -> float:
    """The smallest memory limit of the client's workers (infinite where none is set)."""
    limits = [w.get("memory_limit") for w in client.scheduler_info()["workers"].values()]
    return min((limit for limit in limits if limit), default=float("inf"))


def places_on_workers(solver: str, shape: tuple, n_components: int, method: str) -> bool:
    """Whether the eigen stage of a fit of data of ``shape`` will iterate on the workers (the
    fit then keeps the neighbor lists, the weights and B there, ``resident``)."""
    from ..tasks.progress import distributed_client
    from .solve import choose_solver

    n, n_features = shape
    amg = choose_solver(solver, n, n_features=n_features) == "amg"
    possible = method == "standard" and amg and n >= min_rows(n_components)
    return _resolved(n, distributed_client() if possible else None) == "workers"


def min_rows(n_components: int) -> int:
    """Below this many rows, ``lobpcg`` and ``amg`` run ``dense`` (scipy's LOBPCG would)."""
    block = n_components + config.get("eigen.lobpcg-extra-vectors")
    return config.get("eigen.lobpcg-min-rows-per-vector") * block + 2


def client_bytes(n: int) -> int:
    """What an ``amg`` solve of n rows holds in this process (buffers, operator, hierarchy),
    scaled from its measured peak (docs/design/eigen.md)."""
    return int(n * 1_900)
