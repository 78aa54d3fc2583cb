"""Quality of a neighbor graph and of an embedding, estimated on a random sample of points.

Each metric looks at ``sample_size`` random points against *all* points, so the cost is
O(sample_size x n x D) in blocks over the (dask) data, never O(n^2):

- ``knn_recall``: the share of each sampled point's exact k nearest neighbors that the
  (approximate) graph found;
- ``trustworthiness`` (Venna & Kaski 2001): are the embedding's neighbors true neighbors? Points
  that enter the k-neighborhood in the embedding are penalised by how far down the input-space
  ranking they are;
- ``continuity``: the converse — are the true neighbors kept close in the embedding?

Both are 1 for a perfect embedding and follow scikit-learn's ``trustworthiness`` normalisation,
here averaged over the sampled points instead of all points.
"""

from __future__ import annotations

import functools

import dask
import dask.array as da
import numpy as np

from .tasks.blocks import row_offsets, shared, take_rows, tree_reduce
from .tasks.memory import rows_within
from .tasks.progress import compute

DEFAULT_SAMPLE = 1000


def sample_rows(n: int, sample_size: int, random_state: int) -> np.ndarray:
    """A sorted random sample of at most ``sample_size`` of n rows (all of them, in order, when
    n is smaller)."""
    size = min(sample_size, n)
    return np.sort(np.random.default_rng(random_state).choice(n, size, replace=False))


def _squared(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    q = queries.astype(np.float64, copy=False)
    p = points.astype(np.float64, copy=False)
    return np.maximum((q * q).sum(1)[:, None] - 2 * q @ p.T + (p * p).sum(1)[None, :], 0.0)


def _block_scan(block, queries, thresholds, targets, sample, offset, k):
    """Per data block: top-k candidates (excluding the queries themselves) and rank counts.

    counts[i, j] = number of block rows closer to query i than targets[i, j] is, the target
    itself excluded by index (its own distance may round either side of the threshold).
    """
    d = _squared(queries, block)
    rows = np.arange(block.shape[0]) + offset
    d[sample[:, None] == rows[None, :]] = np.inf
    closer = d[:, :, None] < thresholds[:, None, :]
    closer &= rows[None, :, None] != targets[:, None, :]
    counts = closer.sum(1)
    kk = min(k, d.shape[1])
    part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
    return np.take_along_axis(d, part, 1), rows[part], counts


def _merge_scans(*parts, k):
    d = np.concatenate([p[0] for p in parts], 1)
    idx = np.concatenate([p[1] for p in parts], 1)
    order = np.lexsort((idx, d), axis=1)[:, :k]
    counts = sum(p[2] for p in parts)
    return np.take_along_axis(d, order, 1), np.take_along_axis(idx, order, 1), counts


def _pair_distances(block, queries, query_rows, block_rows) -> np.ndarray:
    """Squared distance from queries[query_rows[p]] to block[block_rows[p]] for every pair p,
    a batch of pairs at a time (their float64 differences within ~128 MB)."""
    out = np.empty(len(query_rows))
    step = max(1, 2**24 // max(1, queries.shape[1]))
    for start in range(0, len(out), step):
        pairs = slice(start, start + step)
        diff = block[block_rows[pairs]].astype(np.float64) - queries[query_rows[pairs]]
        out[pairs] = np.einsum("pd,pd->p", diff, diff)
    return out


def _thresholds(X: da.Array, queries, targets: np.ndarray) -> np.ndarray:
    """Squared input distance from sampled point i to each row targets[i, j], computed where
    the rows live: the task of each data block takes the pairs whose target it holds."""
    flat = targets.ravel()
    order = np.argsort(flat, kind="stable")
    starts = row_offsets(X.chunks[0])
    bounds = np.searchsorted(flat[order], np.append(starts, X.shape[0]))
    distances = dask.delayed(_pair_distances, pure=True)
    tasks, pairs_of = [], []
    blocks = X.to_delayed(optimize_graph=False).ravel()
    for b, block in enumerate(blocks):
        pairs = order[bounds[b] : bounds[b + 1]]
        if len(pairs):
            local = flat[pairs] - starts[b]
            tasks.append(distances(block, queries, pairs // targets.shape[1], local))
            pairs_of.append(pairs)
    out = np.empty(flat.size)
    for pairs, found in zip(pairs_of, compute(*tasks), strict=True):
        out[pairs] = found
    return out.reshape(targets.shape)


def _batches(m: int, n: int) -> list[slice]:
    """Slices of the m sampled rows such that a batch's (rows x n) distances stay ~16 MB."""
    step = max(1, 2**21 // n)
    return [slice(i, min(i + step, m)) for i in range(0, m, step)]


def _embedding_distances(Y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    d = _squared(Y[rows], Y)
    d[np.arange(len(rows)), rows] = np.inf  # a point is not its own neighbor
    return d


def _embedding_neighbors(Y: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The k nearest embedding points of each row (itself excluded), nearest first."""
    d = _embedding_distances(Y, rows)
    part = np.argpartition(d, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def _embedding_ranks(Y: np.ndarray, rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based ranks in the embedding of each row's targets (number strictly closer, + 1)."""
    d = _embedding_distances(Y, rows)
    target_d = np.take_along_axis(d, targets, 1)
    # a target at a time: (rows x n x k) comparisons at once would be k times the distances
    closer = [(d < target_d[:, [j]]).sum(axis=1) for j in range(targets.shape[1])]
    return np.stack(closer, axis=1) + 1


def _rank_penalty(ranks: np.ndarray, outside: np.ndarray, n: int, k: int) -> float:
    """scikit-learn's trustworthiness formula, averaged over the rows given."""
    m = ranks.shape[0]
    penalty = np.where(outside, ranks - k, 0).sum()
    return float(1.0 - penalty * (2.0 / (m * k * (2.0 * n - 3.0 * k - 1.0))))


def neighborhood_scores(
    X: da.Array | np.ndarray,
    embeddings: list[np.ndarray],
    *,
    n_neighbors: int = 10,
    sample_size: int = DEFAULT_SAMPLE,
    random_state: int = 0,
    verbose: bool = False,
) -> list[tuple[float, float]]:
    """Sampled (trustworthiness, continuity) of several embeddings of the same data, in one pass
    over ``X`` (a parameter sweep's embeddings).

    Parameters
    ----------
    X : dask array or array-like of shape (n_samples, n_features)
        The input data.
    embeddings : list of ndarray of shape (n_samples, n_components_i)
        The embeddings, in memory.
    n_neighbors, sample_size, random_state, verbose
        As for :func:`neighborhood_quality`.

    Returns
    -------
    list of (float, float)
        Trustworthiness and continuity of each embedding, on the same sampled points.
    """
    X = X if isinstance(X, da.Array) else da.from_array(np.asarray(X))
    k = int(min(n_neighbors, X.shape[0] - 2))
    sample = sample_rows(X.shape[0], sample_size, random_state)
    return _scores(X, embeddings, sample, k, verbose)[0]


def _scores(X: da.Array, embeddings, sample: np.ndarray, k: int, verbose: bool = False):
    """(trustworthiness, continuity) per embedding, and the sample's input-space neighbors.

    The embeddings' neighbor lists of the sampled points are stacked side by side, so that one
    scan of the data ranks them all in input space.
    """
    n = X.shape[0]
    # Embedding-space neighbors of the sample (in memory: the embedding is small), a batch of
    # sampled rows at a time: (sample x n) distances at a million points would be 8 GB.
    batches = _batches(len(sample), n)
    Ys = [np.asarray(Y, dtype=np.float64) for Y in embeddings]
    emb_nbrs = [
        np.concatenate([_embedding_neighbors(Y, sample[b], k) for b in batches]) for Y in Ys
    ]
    input_nbrs, counts = _input_scan(X, sample, np.concatenate(emb_nbrs, axis=1), k, verbose)
    scores = []
    for e, (Y, nbrs) in enumerate(zip(Ys, emb_nbrs, strict=True)):
        # Ranks are 1-based: rank = number of other points strictly closer + 1.
        in_input = (nbrs[:, :, None] == input_nbrs[:, None, :]).any(-1)
        trust = _rank_penalty(counts[:, e * k : (e + 1) * k] + 1, ~in_input, n, k)
        # Continuity: ranks, in the embedding, of the true neighbors that the embedding lost.
        ranks = np.concatenate([_embedding_ranks(Y, sample[b], input_nbrs[b]) for b in batches])
        in_emb = (input_nbrs[:, :, None] == nbrs[:, None, :]).any(-1)
        scores.append((trust, _rank_penalty(ranks, ~in_emb, n, k)))
    return scores, input_nbrs


def _input_scan(X: da.Array, sample: np.ndarray, targets: np.ndarray, k: int, verbose: bool):
    """One pass over the data: each sampled point's k nearest rows, and for each of its targets
    the number of rows closer than it."""
    # Input-space distances from each sampled point to its targets: the thresholds whose rank
    # in input space we count while scanning the data.
    queries = take_rows(X, sample)
    shared_queries, shared_sample = shared(queries, sample)
    thresholds = _thresholds(X, shared_queries, targets)

    # a scan task holds its block in float64, and (sample x block) distances, indices and
    # comparison flags for each target
    per_row = len(sample) * (24 + 2 * targets.shape[1]) + 16 * X.shape[1]
    X = X.rechunk({0: rows_within(per_row, at_least=64)})
    scan = dask.delayed(_block_scan, pure=True)
    # one key each (scattered on a cluster), not a copy inside every task
    shared_thresholds, shared_targets = shared(thresholds, targets)
    parts = [
        scan(block, shared_queries, shared_thresholds, shared_targets, shared_sample, int(off), k)
        for block, off in zip(
            X.to_delayed(optimize_graph=False).ravel(), row_offsets(X.chunks[0]), strict=True
        )
    ]
    merged = tree_reduce(parts, functools.partial(_merge_scans, k=k))
    ((_, input_nbrs, counts),) = compute(merged, label="quality", verbose=verbose)
    return input_nbrs, counts


def neighborhood_quality(
    X: da.Array | np.ndarray,
    embedding: np.ndarray,
    *,
    neighbor_indices: np.ndarray | None = None,
    n_neighbors: int = 10,
    sample_size: int = DEFAULT_SAMPLE,
    random_state: int = 0,
    verbose: bool = False,
) -> dict[str, float]:
    """Sampled kNN recall, trustworthiness and continuity (against all of ``X``, by block).

    Parameters
    ----------
    X : dask array or array-like of shape (n_samples, n_features)
        The input data.
    embedding : ndarray of shape (n_samples, n_components)
        Its embedding, in memory.
    neighbor_indices : ndarray of shape (n_samples, k), optional
        A neighbor graph to check (``neighbor_indices_``); gives ``knn_recall``.
    n_neighbors : int, default=10
        Neighborhood size k of the metrics.
    sample_size : int, default=1000
        Number of sampled points.
    random_state : int, default=0
        Seed of the sample.
    verbose : bool, default=False
        Report progress of the pass over the data on stderr.

    Returns
    -------
    dict
        ``trustworthiness``, ``continuity``, ``sample_size``; ``knn_recall`` given a graph.
    """
    X = X if isinstance(X, da.Array) else da.from_array(np.asarray(X))
    n = X.shape[0]
    k = int(min(n_neighbors, n - 2))
    sample = sample_rows(n, sample_size, random_state)
    ((trust, cont),), input_nbrs = _scores(X, [embedding], sample, k, verbose)
    result = {"trustworthiness": trust, "continuity": cont, "sample_size": int(len(sample))}
    if neighbor_indices is not None:
        kr = min(k, neighbor_indices.shape[1])
        found = np.asarray(neighbor_indices[sample, :kr])  # a dask array's sampled rows
        hits = (found[:, :, None] == input_nbrs[:, None, :kr]).any(-1).sum()
        result["knn_recall"] = float(hits / found.size)
    return result
