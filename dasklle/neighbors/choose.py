"""Which search runs: ``"auto"``'s rules, and whether a single-task index fits a task.

See docs/design/neighbors.md for the measurements behind the defaults.
"""

from __future__ import annotations

import warnings

from .. import config
from ..tasks.memory import task_bytes


def choose_algorithm(algorithm: str, n_samples: int, n_features: int, n_neighbors: int = 10) -> str:
    """The search that will run for ``algorithm`` on data of this shape.

    ``"auto"`` becomes a KD-tree up to ``neighbors.tree-max-dim`` features while the tree fits
    a task's memory, exact brute force while n^2 D stays within ``neighbors.brute-max-work``,
    and ``"projected"`` otherwise, in every dimension. A tree or pynndescent index that would not
    fit a task's memory becomes ``"projected"`` too, with a ``FallbackWarning``.

    Parameters
    ----------
    algorithm : "auto", "brute", "kd_tree", "ball_tree", "nndescent" or "projected"
    n_samples, n_features : shape of the data
    n_neighbors : neighbors per point, excluding the point itself

    Returns
    -------
    str
        The algorithm that runs.
    """
    if algorithm == "auto":
        if n_features <= config.get("neighbors.tree-max-dim") and index_fits(
            "kd_tree", n_samples, n_features, n_neighbors
        ):
            return "kd_tree"
        if float(n_samples) ** 2 * n_features <= float(config.get("neighbors.brute-max-work")):
            return "brute"
        return "projected"
    if not index_fits(algorithm, n_samples, n_features, n_neighbors):
        from ..exceptions import FallbackWarning  # imports scikit-learn

        warnings.warn(
            f"neighbors_algorithm={algorithm!r} builds one index over all {n_samples:,} points "
            "in one task, more than a task's share of the workers' memory; running the "
            "partitioned search ('projected') instead.",
            FallbackWarning,
            stacklevel=3,
        )
        return "projected"
    return algorithm


def runs_partitioned(algorithm: str, n_samples: int) -> bool:
    """Whether ``algorithm``, as ``choose_algorithm`` resolved it, runs the partitioned search
    (``"projected"`` above ``neighbors.projected-brute-max-rows`` rows)."""
    return algorithm == "projected" and n_samples > config.get("neighbors.projected-brute-max-rows")


def index_fits(algorithm: str, n_samples: int, n_features: int, n_neighbors: int) -> bool:
    """Whether a single-task index (tree or pynndescent graph) over all points fits a task."""
    if algorithm in ("kd_tree", "ball_tree"):  # float64 copy of the data, node bounds, indices
        need = n_samples * (16 * n_features + 16)
    elif algorithm == "nndescent":  # data, search trees, and the graph's heaps while it builds
        fixed = config.get_bytes("neighbors.nndescent-fixed-bytes")
        need = fixed + n_samples * (12 * n_features + 64 * (n_neighbors + 1))
    else:
        return True
    return need <= task_bytes()
