"""Stage 1: the k nearest neighbors of every point, excluding the point itself.

Every search returns int64 indices of shape (n_samples, n_neighbors), sorted by distance, the
point itself removed *by index* (so duplicated points stay correct). The exact searches rank
equal distances by row index, the lower first, whatever the chunking. The choices and their
measurements are in docs/design/neighbors.md; the tunables under ``dasklle.neighbors.*`` in
docs/configuration.md.

Modules:

- ``choose``: ``"auto"``'s rules (``choose_algorithm``), whether a single-task index fits a
  task's memory, and when the projected search runs in partitions (``runs_partitioned``).
- ``exact``: blockwise brute force (the reference), the ranking of ties by lower index, the
  exact query of new points, and the rerank of candidates by true distance.
- ``trees``: scikit-learn's KD and ball trees, exact and fast in low dimension.
- ``nndescent``: pynndescent, approximate and fast in high dimension.
- ``projected``: principal axes from a sample, candidates found in the projection, reranked;
  and ``shared``, arrays every task needs as one graph key.
- ``shuffle``: the scratch directory, assigning rows to their nearest partitions, gathering a
  partition's pieces.
- ``partitioned``: the partitioned search (``partitioned_graph``), its per-partition solves
  with weights, and ``PartitionIndex`` for new points.
- ``copies``: each row's result from its partitions: the copies' lists merged (weights solved
  again where needed) for a fit, the best copy for new points.
- ``index``: ``NeighborIndex``, the fitted structure ``transform`` queries, and
  ``deferred_index``.
- ``search``: ``nearest_neighbors``, which runs the chosen search.
"""

from __future__ import annotations

from .choose import choose_algorithm, index_fits, runs_partitioned
from .index import NeighborIndex, deferred_index, partitioned_index
from .partitioned import PartitionIndex, partitioned_graph
from .search import nearest_neighbors

__all__ = [
    "NeighborIndex",
    "PartitionIndex",
    "choose_algorithm",
    "deferred_index",
    "index_fits",
    "nearest_neighbors",
    "partitioned_graph",
    "partitioned_index",
    "runs_partitioned",
]
