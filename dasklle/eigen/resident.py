"""B = I - W held on the workers, and a worker solve's row ranges built there from it.

``ResidentOperator`` is M = B^T B with B's rows in chunks on the workers. ``RangeSetup`` sends
each range the rows of B it needs (its rows, and the rows that reference its columns) and builds
there what the solve's products and preconditioner read: the range's rows of B split by the
ranges they read, its rows of B^T, its diagonal of M, its aggregates and its share of the coarse
level. The client holds vectors of one entry a row (the order, the diagonal, aggregate ids) and
the coarse level; never B.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..tasks import blocks, memory
from . import multigrid
from .cost import CostOperator
from .rowblocks import CostMatrix, reduce_sum

# a chunk of B's rows: its CSR arrays (12 bytes a nonzero) and their copies while it is cut
CHUNK_BYTES_PER_NONZERO = 48


@dataclass
class ResidentOperator:
    """M = B^T B, B (n, n) sparse with its rows on the workers: ``chunks[c]`` is a future of
    the CSR rows bounds[c]..bounds[c + 1]. ``rebuild``: how to scatter them again, when they
    were scattered from this process (no worker can recompute them)."""

    client: object
    chunks: list
    bounds: np.ndarray
    rebuild: Callable[[], ResidentOperator] | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        n = int(self.bounds[-1])
        return n, n

    @classmethod
    def scattered(cls, client, M: CostOperator) -> ResidentOperator:
        """M's B cut into row chunks and scattered."""
        B = sp.csr_array(M.B)
        bounds = _chunk_bounds(client, B.shape[0], max(1.0, B.nnz / max(B.shape[0], 1)))
        pieces = [B[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        chunks = client.scatter(pieces, hash=False)
        return cls(client, chunks, bounds, rebuild=lambda: cls.scattered(client, M))

    @classmethod
    def from_neighbors(cls, client, indices, weights) -> ResidentOperator:
        """B = I - W from the neighbor lists and weights (numpy arrays, scattered in row
        chunks, or dask arrays, whose chunks are built where they are)."""
        import dask.array as da

        rebuild = None  # dask arrays' chunks are recomputed where a worker lost them
        if isinstance(indices, da.Array):
            weights = weights.rechunk(indices.chunks)
            bounds = np.cumsum((0,) + indices.chunks[0]).astype(np.int64)
            parts = [
                client.compute(list(array.to_delayed().ravel())) for array in (indices, weights)
            ]
        else:
            bounds = _chunk_bounds(client, len(indices), indices.shape[1] + 1)
            parts = [
                client.scatter(np.split(array, bounds[1:-1]), hash=False)
                for array in (indices, weights)
            ]
            rebuild = lambda: cls.from_neighbors(client, indices, weights)  # noqa: E731
        n = int(bounds[-1])
        chunks = client.map(_rows_of_B, *parts, bounds[:-1], n=n)
        return cls(client, chunks, bounds, rebuild=rebuild)

    def rebuilt(self) -> ResidentOperator:
        """The operator with its chunks scattered again if they were scattered (after a lost
        worker), else itself: the scheduler recomputes lost chunks that it computed."""
        return self if self.rebuild is None else self.rebuild()

    def gather(self) -> CostOperator:
        """The operator in the client."""
        return CostOperator(sp.vstack(self.client.gather(self.chunks), format="csr"))

    def times_few(self, X: np.ndarray) -> np.ndarray:
        """M @ X for a few columns: each chunk's B_c^T (B_c X), summed by a tree of tasks."""
        (shared,) = blocks.to_workers(self.client, [X])
        return reduce_sum(self.client, self.client.map(_chunk_gram_times, self.chunks, X=shared))

    def locality_order(self, n_ranges: int, seed: int) -> np.ndarray:
        """``locality.locality_order`` of the kNN graph (B's off-diagonal pattern), computed by
        one task on a worker."""
        future = self.client.submit(
            _locality_order, self.chunks, self.bounds, n_ranges=n_ranges, seed=seed,
            budget=memory.task_bytes(), pure=False,
        )  # fmt: skip
        return future.result()


def _chunk_bounds(client, n: int, nonzeros_per_row: float) -> np.ndarray:
    """Row chunks' starts (and the end): within a task's budget, one a worker thread at least."""
    threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
    rows = memory.rows_within(CHUNK_BYTES_PER_NONZERO * nonzeros_per_row)
    rows = min(rows, max(1, -(-n // threads)))
    return np.append(np.arange(0, n, rows), n).astype(np.int64)


def _rows_of_B(indices: np.ndarray, weights: np.ndarray, start: int, n: int) -> sp.csr_array:
    """Rows start.. of B = I - W, as ``CostOperator.from_weights`` builds them."""
    from .cost import compact_csr, weight_matrix

    rows = len(indices)
    W = weight_matrix(np.asarray(indices), np.asarray(weights), n)
    identity = sp.csr_array(
        (np.ones(rows), start + np.arange(rows), np.arange(rows + 1)), shape=(rows, n)
    )
    return compact_csr(identity - W, np.float64)


def _chunk_gram_times(B: sp.csr_array, X: np.ndarray) -> np.ndarray:
    return B.T @ (B @ X)


def _off_diagonal(B: sp.csr_array, start: int) -> sp.csr_array:
    """The 0/1 pattern of B's rows without their diagonal entries (float32, 32-bit indices)."""
    B = sp.csr_array(B)
    rows = np.repeat(np.arange(B.shape[0]), np.diff(B.indptr))
    keep = B.indices != rows + start
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=B.shape[0]))])
    index = np.int32 if B.shape[1] < 2**31 and indptr[-1] < 2**31 else np.int64
    return sp.csr_array(
        (np.ones(int(indptr[-1]), np.float32), B.indices[keep].astype(index),
         indptr.astype(index)),
        shape=B.shape,
    )  # fmt: skip


def knn_graph_of(chunks: list, bounds: np.ndarray) -> sp.csr_array:
    """The symmetrised 0/1 graph of B's off-diagonal pattern (the kNN graph behind W)."""
    directed = sp.vstack(
        [_off_diagonal(c, start) for c, start in zip(chunks, bounds[:-1], strict=True)],
        format="csr",
    )
    return multigrid.symmetrised(directed)


def _locality_order(chunks: list, bounds: np.ndarray, n_ranges: int, seed: int, budget: int):
    from .locality import locality_order

    return locality_order(knn_graph_of(chunks, bounds), n_ranges, seed, budget)


# ---- a solve's ranges, built on the workers -------------------------------------------------


def _owners(columns: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    return np.searchsorted(bounds, columns, side="right") - 1


def _split_for_ranges(B: sp.csr_array, start: int, position: np.ndarray, bounds: np.ndarray):
    """A chunk's rows of B, rows and columns renumbered to their positions in the order, split
    among the ranges that hold them or one of their columns: one (positions, rows) a range."""
    B = sp.csr_array(B)
    # a copy of the data: sorting the renumbered rows would reorder the held chunk's in place
    renumbered = sp.csr_array((B.data.copy(), position[B.indices], B.indptr), shape=B.shape)
    renumbered.has_sorted_indices = False
    renumbered.sort_indices()
    positions = position[start : start + B.shape[0]]
    entry_rows = np.repeat(np.arange(B.shape[0]), np.diff(B.indptr))
    hit = np.zeros((len(bounds) - 1, B.shape[0]), dtype=bool)
    hit[_owners(renumbered.indices, bounds), entry_rows] = True
    hit[_owners(positions, bounds), np.arange(B.shape[0])] = True
    return tuple((positions[mask], sp.csr_array(renumbered[mask])) for mask in hit)


def _item(parts, p: int):
    return parts[p]


def _range_rows(shares: list) -> tuple[np.ndarray, sp.csr_array]:
    """A range's rows of B from every chunk's share, sorted by position."""
    positions = np.concatenate([share[0] for share in shares])
    rows = sp.vstack([share[1] for share in shares], format="csr")
    order = np.argsort(positions, kind="stable")
    return positions[order], sp.csr_array(rows[order])


def _formed_rows(held, p: int, bounds: np.ndarray):
    """Range p's rows of B^T (columns: the held rows), the held rows that reference its
    columns (sorted) and those rows of B."""
    _, rows = held
    transposed = sp.csr_array(rows[:, bounds[p] : bounds[p + 1]].T.tocsr())
    needed = np.unique(transposed.indices)
    return transposed, needed, sp.csr_array(rows[needed])


def _own_rows(held, p: int, bounds: np.ndarray) -> sp.csr_array:
    """The held rows of range p itself, in order."""
    positions, rows = held
    first, last = np.searchsorted(positions, [bounds[p], bounds[p + 1]])
    return sp.csr_array(rows[first:last])


def _halo_rows(columns: np.ndarray, bounds: np.ndarray, p: int) -> list[tuple[int, np.ndarray]]:
    """(q, rows of range q) for every other range q that ``columns`` reference, rows sorted."""
    outside = np.unique(columns[_owners(columns, bounds) != p])
    owners = _owners(outside, bounds)
    return [
        (int(q), (outside[owners == q] - bounds[q]).astype(np.int64)) for q in np.unique(owners)
    ]


def _summary(held, p: int, bounds: np.ndarray):
    """What the client needs of range p to place the products (the rows of each other range
    it reads) and its diagonal of M (the squared norms of B's columns)."""
    transposed, _, rows = _formed_rows(held, p, bounds)
    diagonal = np.asarray(transposed.multiply(transposed).sum(axis=1)).ravel()
    return _halo_rows(rows.indices, bounds, p), diagonal


def _columns_of(rows: sp.csr_array, bounds: np.ndarray, q: int, halo) -> sp.csr_array:
    """The columns of ``rows`` in range q, numbered as the rows of block q, or of its ``halo``
    (the sorted rows of block q that are cut and sent)."""
    part = sp.csr_array(rows[:, bounds[q] : bounds[q + 1]])
    if halo is None:
        return part
    return sp.csr_array(
        (part.data, np.searchsorted(halo, part.indices), part.indptr),
        shape=(part.shape[0], len(halo)),
    )


def _piece(held, p: int, halos: dict, bounds: np.ndarray):
    """Range p's piece, (its rows of B split by the columns of each range it reads, its rows of
    B^T), and the ranges it reads (p first); ``halos[q]``: the rows of range q it is sent, or
    None for a range read in place."""
    transposed, needed, rows = _formed_rows(held, p, bounds)
    reads = _reads(rows, p, bounds)
    parts = [_columns_of(rows, bounds, q, halos.get(q)) for q in reads]
    local_BT = sp.csr_array(
        (transposed.data, np.searchsorted(needed, transposed.indices), transposed.indptr),
        shape=(transposed.shape[0], len(needed)),
    )
    return (parts, local_BT), reads


def _reads(formed: sp.csr_array, p: int, bounds: np.ndarray) -> list[int]:
    """The ranges that range p's formed rows of B read (p first)."""
    referenced = np.unique(_owners(formed.indices, bounds))
    return [p] + [int(q) for q in referenced if q != p]


def _linear_piece(held, p: int, halos: dict, bounds: np.ndarray) -> tuple[list, list]:
    """Range p's rows of B and its rows of B^T, each split by the columns of the ranges that
    its piece of M reads (the same halos serve all three products)."""
    positions, rows = held
    reads = _reads(_formed_rows(held, p, bounds)[2], p, bounds)
    transposed = sp.csr_array(rows[:, bounds[p] : bounds[p + 1]].T.tocsr())
    transposed = sp.csr_array(  # columns: the held rows' positions
        (transposed.data, positions[transposed.indices], transposed.indptr),
        shape=(transposed.shape[0], int(bounds[-1])),
    )
    own = _own_rows(held, p, bounds)
    return tuple(
        [_columns_of(part, bounds, q, halos.get(q)) for q in reads] for part in (own, transposed)
    )


def _reciprocal(diagonal: np.ndarray, shift: float) -> np.ndarray:
    return (1.0 / (diagonal + shift)).astype(np.float32)


def _range_aggregation(held, p: int, bounds: np.ndarray) -> sp.csr_array:
    """Aggregates of the kNN graph among range p's own rows (a float32 0/1 map)."""
    inside = _off_diagonal(_own_rows(held, p, bounds)[:, bounds[p] : bounds[p + 1]], 0)
    return multigrid.aggregation(multigrid.symmetrised(inside)).astype(np.float32)


def _aggregate_ids(aggregation: sp.csr_array) -> np.ndarray:
    """Each row's aggregate (-1: none), in the range's own numbering."""
    ids = np.full(aggregation.shape[0], -1, dtype=np.int32)
    ids[np.repeat(np.arange(aggregation.shape[0]), np.diff(aggregation.indptr))] = (
        aggregation.indices
    )
    return ids


def _aggregated_rows(held, p: int, bounds: np.ndarray, ids: np.ndarray, n_coarse: int):
    """Range p's own rows of B (positions ``rows``) with their columns' aggregates (``kept``:
    those in one), and the kNN edges from its rows between aggregates (directed)."""
    own = sp.coo_array(_own_rows(held, p, bounds))
    rows, columns = own.coords[0] + bounds[p], ids[own.coords[1]]
    kept = columns >= 0
    edges = kept & (own.coords[1] != rows) & (ids[rows] >= 0)
    directed = sp.csr_array(
        (np.ones(int(edges.sum()), np.float32), (ids[rows[edges]], columns[edges])),
        shape=(n_coarse, n_coarse),
    )
    return own, rows, columns, kept, directed


def _coarse_share(held, p: int, bounds: np.ndarray, ids: np.ndarray, n_coarse: int):
    """Range p's share of the coarse level: (B_p P)^T (B_p P) for its own rows B_p, and the
    kNN edges from its rows between aggregates."""
    own, _, columns, kept, directed = _aggregated_rows(held, p, bounds, ids, n_coarse)
    BP = sp.csr_array(
        (own.data[kept], (own.coords[0][kept], columns[kept])), shape=(own.shape[0], n_coarse)
    )
    return sp.csr_array(BP.T @ BP), directed


def _coarse_share_of_B(held, p: int, bounds: np.ndarray, ids: np.ndarray, n_coarse: int):
    """Range p's share of P^T B P (its own rows of B summed over aggregates, both ways), and
    the kNN edges from its rows between aggregates."""
    own, rows, columns, kept, directed = _aggregated_rows(held, p, bounds, ids, n_coarse)
    kept &= ids[rows] >= 0
    shape = (n_coarse, n_coarse)
    return sp.csr_array((own.data[kept], (ids[rows[kept]], columns[kept])), shape=shape), directed


def _undirected(directed: sp.csr_array) -> sp.csr_array:
    """The graph of the directed edges both ways, without loops, each weighted by its count of
    kNN edges (as ``multigrid.coarse_graph``'s)."""
    graph = (directed + directed.T).tocsr()
    graph.setdiag(0)
    graph.eliminate_zeros()
    return graph


def _summed(parts: list) -> tuple:
    return tuple(sum(part[i] for part in parts) for i in range(len(parts[0])))


def _merged_halos(halo_lists: list, owners: list) -> dict:
    """The rows of range q that the ranges of each worker read: {(q, worker): sorted rows}; a
    range on the same worker is read in place."""
    halos: dict[tuple[int, str], np.ndarray] = {}
    for p, listed in enumerate(halo_lists):
        for q, used in listed:
            if owners[q] != owners[p]:
                key = (q, owners[p])
                halos[key] = np.union1d(halos.get(key, used[:0]), used)
    return halos


class RangeSetup:
    """The rows of B each range of a worker solve needs, on its worker, and what is built from
    them: ``pieces``, ``reciprocal_diagonal``, ``aggregations`` and ``coarse_level``.

    Each chunk of B splits its rows among the ranges that hold them or one of their columns;
    ``diagonal`` (diag(M) in the ranges' order) is in the client.
    """

    def __init__(self, ranges, M: ResidentOperator, order: np.ndarray):
        self.ranges, self.bounds = ranges, ranges.bounds
        self.numbers = list(range(len(self.bounds) - 1))
        client = ranges.client
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        (shared,) = blocks.to_workers(client, [position])
        split = client.map(
            _split_for_ranges, M.chunks, M.bounds[:-1], position=shared, bounds=self.bounds
        )
        shares = [[client.submit(_item, parts, p) for parts in split] for p in self.numbers]
        self.held = ranges.map(_range_rows, shares)
        summaries = client.gather(self._map(_summary))
        self.halo_lists = [halos for halos, _ in summaries]
        self.diagonal = np.concatenate([diagonal for _, diagonal in summaries])

    def _map(self, function, *per_range, **kwargs) -> list:
        """function(held_p, p, *per_range_p, bounds=..., **kwargs) on each range's worker."""
        return self.ranges.map(
            function, self.held, self.numbers, *per_range, bounds=self.bounds, **kwargs
        )

    def pieces(self):
        """M on the workers (``rowblocks.CostMatrix``): each range's rows of B split by the
        ranges it reads, with the halos it is sent cut where they live."""
        owners = self.ranges.workers
        halos = _merged_halos(self.halo_lists, owners)
        self.sent = [{q: halos.get((q, owners[p])) for q in self.numbers} for p in self.numbers]
        built = self._map(_piece, self.sent)
        sources = self.ranges.client.gather(self.ranges.map(_item, built, p=1))
        pieces = self.ranges.map(_item, built, p=0)
        scattered = {key: self.ranges.scatter_to(key[0], rows) for key, rows in halos.items()}
        sent_rows = sum(len(rows) for rows in halos.values())
        return CostMatrix(self.ranges, pieces, sources, scattered, sent_rows)

    def linear_pieces(self) -> list:
        """Each range's rows of B and of B^T (futures) for ``CostMatrix.apply_linear``; after
        ``pieces``, whose halos they read."""
        return self._map(_linear_piece, self.sent)

    def coarse_of_B(self, ids: np.ndarray) -> tuple[sp.csr_array, sp.csr_array]:
        """P^T B P over the aggregates of ``aggregations`` (``ids``) and the graph between
        aggregates, summed over the ranges."""
        client = self.ranges.client
        (shared,) = blocks.to_workers(client, [ids])
        shares = self._map(_coarse_share_of_B, ids=shared, n_coarse=int(ids.max()) + 1)
        coarse, directed = reduce_sum(client, shares, combine=_summed)
        return sp.csr_array(coarse).tocsr(), _undirected(directed)

    def reciprocal_diagonal(self, shift: float) -> list:
        """1 / (diag(M) + shift) of each range, float32, on its worker."""
        parts = self.ranges.scatter(np.split(self.diagonal, self.bounds[1:-1]))
        return self.ranges.map(_reciprocal, parts, shift=shift)

    def aggregations(self) -> tuple[list, np.ndarray, list[int]]:
        """Each range's aggregates (futures of its float32 0/1 maps), every row's aggregate in
        the coarse level's numbering (-1: none) and each range's count of aggregates."""
        maps = self._map(_range_aggregation)
        local = self.ranges.client.gather(self.ranges.map(_aggregate_ids, maps))
        sizes = [int(ids.max()) + 1 if len(ids) else 0 for ids in local]
        starts = np.cumsum([0] + sizes)[:-1]
        ids = [np.where(part >= 0, part + at, -1) for part, at in zip(local, starts, strict=True)]
        return maps, np.concatenate(ids).astype(np.int32), sizes

    def coarse_level(self, ids: np.ndarray, shift: float) -> tuple[sp.csr_array, sp.csr_array]:
        """P^T (M + shift I) P and the graph between aggregates, summed over the ranges."""
        client = self.ranges.client
        n_coarse = int(ids.max()) + 1
        (shared,) = blocks.to_workers(client, [ids])
        shares = self._map(_coarse_share, ids=shared, n_coarse=n_coarse)
        gram, directed = reduce_sum(client, shares, combine=_summed)
        sizes = np.bincount(ids[ids >= 0], minlength=n_coarse).astype(np.float64)
        coarse = sp.csr_array(gram + shift * sp.diags_array(sizes)).tocsr()
        return coarse, _undirected(directed)
