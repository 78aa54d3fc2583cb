"""n-row blocks held on the Dask workers, one numpy block per row range, and the operations the
eigen iteration needs on them: products with M = B^T B (B split into the same ranges), linear
combinations with small matrices, and Gram matrices reduced to the client.

Only (columns x columns) matrices and the coarse levels reach the client. A product's task for
one row range reads its own block and, from the other ranges, only the rows its rows reference
(its halo, cut where each block lives; a locality ordering keeps it small).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class RowBlocks:
    """An (n, columns) array on the workers: ``futures[p]`` holds rows bounds[p]:bounds[p + 1]."""

    client: object
    futures: list
    bounds: np.ndarray
    columns: int

    def like(self, futures: list, columns: int | None = None) -> RowBlocks:
        return RowBlocks(
            self.client, futures, self.bounds, self.columns if columns is None else columns
        )

    def gather(self) -> np.ndarray:
        """The whole array in the client (for the final vectors only)."""
        return np.vstack(self.client.gather(self.futures))


def _stacked_times(blocks: list[np.ndarray], matrix: np.ndarray) -> np.ndarray:
    return np.hstack(blocks) @ matrix if len(blocks) > 1 else blocks[0] @ matrix


def _per_range(parts: list[RowBlocks]) -> list[list]:
    """The parts' futures grouped by range (one map call then submits every range's task)."""
    return [list(futures) for futures in zip(*(part.futures for part in parts), strict=True)]


def combine(parts: list[RowBlocks], matrix: np.ndarray) -> RowBlocks:
    """[parts side by side] @ matrix, row range by row range."""
    first = parts[0]
    futures = first.client.map(_stacked_times, _per_range(parts), matrix=matrix)
    return first.like(futures, matrix.shape[1])


def _stacked_gram(left: list[np.ndarray], right: list[np.ndarray]) -> np.ndarray:
    return np.hstack(left).T @ np.hstack(right)


def _sum(parts: list[np.ndarray]) -> np.ndarray:
    return np.sum(parts, axis=0)


def reduce_sum(client, parts: list, fan_in: int = 8) -> np.ndarray:
    """The sum of the futures' arrays, by a tree of tasks, in the client."""
    while len(parts) > 1:
        parts = client.map(_sum, [parts[i : i + fan_in] for i in range(0, len(parts), fan_in)])
    return parts[0].result()


def gram(left: RowBlocks | list[RowBlocks], right: RowBlocks | list[RowBlocks]) -> np.ndarray:
    """[left side by side]^T [right side by side], summed over the row ranges, in the client."""
    left = [left] if isinstance(left, RowBlocks) else left
    right = [right] if isinstance(right, RowBlocks) else right
    client = left[0].client
    return reduce_sum(client, client.map(_stacked_gram, _per_range(left), _per_range(right)))


def _column_sums(block: np.ndarray) -> np.ndarray:
    return block.sum(axis=0)


def column_sums(blocks: RowBlocks) -> np.ndarray:
    return reduce_sum(blocks.client, blocks.client.map(_column_sums, blocks.futures))


def column_norms(blocks: RowBlocks) -> np.ndarray:
    return np.sqrt(np.maximum(np.diag(gram(blocks, blocks)), 0.0))


def _minus_times(X: np.ndarray, Y: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return X - Y @ matrix


def minus_times(X: RowBlocks, Y: RowBlocks, matrix: np.ndarray) -> RowBlocks:
    """X - Y @ matrix."""
    return X.like(X.client.map(_minus_times, X.futures, Y.futures, matrix=matrix))


def map_blocks(function, *parts: RowBlocks | list, **kwargs) -> RowBlocks:
    """function(block_p of each part, ...) per row range; a list gives one argument per range.
    The result has the columns of the first RowBlocks among the parts."""
    first = next(part for part in parts if isinstance(part, RowBlocks))
    iterables = [part.futures if isinstance(part, RowBlocks) else part for part in parts]
    return first.like(first.client.map(function, *iterables, **kwargs))


class CostMatrix:
    """M = B^T B on the workers, B sparse (n, n) split into the row ranges of ``bounds``: one
    task per range and product, which forms the rows of B X its own rows need itself (rather
    than a second round of tasks) from its block and the halo of rows it references in others.

    ``pieces[p]`` (futures) holds range p's rows of B and B^T with their columns renumbered into
    [range p's block, its halo from each range of ``halos[p]``]; ``halos[p]`` lists (q, rows
    of block q) pairs, the rows a future on the workers. ``from_operator`` builds them.
    """

    def __init__(self, client, pieces: list, halos: list[list[tuple]], bounds: np.ndarray):
        self.client, self.pieces, self.halos, self.bounds = client, pieces, halos, bounds

    @classmethod
    def from_operator(cls, client, B, BT, bounds: np.ndarray) -> CostMatrix:
        """B and B^T (scipy sparse, rows and columns in the order the bounds split) cut into
        the ranges of ``bounds`` (starts and the end) and scattered to the workers."""
        B, BT = sp.csr_array(B), sp.csr_array(BT)
        halos, pieces = [], []
        for p in range(len(bounds) - 1):
            transposed = BT[bounds[p] : bounds[p + 1]]
            needed = np.unique(transposed.indices)  # the rows of B X this range forms
            rows = B[needed]
            columns, renumbered = _stacked_columns(rows.indices, bounds, p)
            local_B = sp.csr_array(
                (rows.data, renumbered, rows.indptr), shape=(len(needed), columns)
            )
            local_BT = sp.csr_array(
                (transposed.data, np.searchsorted(needed, transposed.indices), transposed.indptr),
                shape=(transposed.shape[0], len(needed)),
            )
            halos.append(_halo_rows(rows.indices, bounds, p))
            pieces.append((local_B, local_BT))
        # the halos' row lists live on the workers: a product ships keys, not indices
        halos = [[(q, client.scatter(r)) for q, r in halo] for halo in halos]
        return cls(client, client.scatter(pieces), halos, bounds)

    def astype(self, dtype) -> CostMatrix:
        """The same matrix in dtype, converted on the workers."""
        pieces = self.client.map(_piece_as, self.pieces, dtype=dtype)
        return CostMatrix(self.client, pieces, self.halos, self.bounds)

    def apply(self, X: RowBlocks, *, shift=0.0, finish=None, finish_args=()) -> RowBlocks:
        """finish((M + shift I) @ X_p, *finish_args_p) per range (M @ X by default); each of
        ``finish_args`` is a RowBlocks or a per-range list."""
        extras = [
            [a.futures[p] if isinstance(a, RowBlocks) else a[p] for a in finish_args]
            for p in range(len(self.pieces))
        ]
        # the rows a range reads from another are cut where that block lives; only they move
        blocks = [
            [X.futures[p]]
            + [self.client.submit(_rows_of, X.futures[q], rows) for q, rows in self.halos[p]]
            for p in range(len(self.pieces))
        ]
        futures = self.client.map(
            _cost_product, self.pieces, blocks, extras, shift=float(shift), finish=finish
        )
        return X.like(futures)

    def halo_rows(self) -> int:
        """The rows a product reads from other ranges, summed over the ranges."""
        sizes = self.client.gather([rows for halo in self.halos for _, rows in halo])
        return int(sum(len(rows) for rows in sizes))


def _owners(columns: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    return np.searchsorted(bounds, columns, side="right") - 1


def _halo_rows(columns: np.ndarray, bounds: np.ndarray, p: int) -> list[tuple[int, np.ndarray]]:
    """(q, rows of range q) for every other range q that ``columns`` reference, rows sorted."""
    outside = np.unique(columns[_owners(columns, bounds) != p])
    owners = _owners(outside, bounds)
    return [
        (int(q), (outside[owners == q] - bounds[q]).astype(np.int64)) for q in np.unique(owners)
    ]


def _stacked_columns(columns: np.ndarray, bounds: np.ndarray, p: int) -> tuple[int, np.ndarray]:
    """``columns`` renumbered into [range p's rows, then its halo rows by range] and the stacked
    width."""
    own = bounds[p + 1] - bounds[p]
    outside = np.unique(columns[_owners(columns, bounds) != p])  # sorted: by range, then row
    renumbered = np.where(
        _owners(columns, bounds) == p,
        columns - bounds[p],
        own + np.searchsorted(outside, columns),
    )
    return int(own + len(outside)), renumbered


def _rows_of(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return block[rows]


def _piece_as(piece, dtype):
    local_B, local_BT = piece
    return local_B.astype(dtype), local_BT.astype(dtype)


def _cost_product(piece, blocks, extra, shift, finish):
    local_B, local_BT = piece
    stacked = np.vstack(blocks) if len(blocks) > 1 else blocks[0]
    out = local_BT @ (local_B @ stacked)
    if shift:
        out += shift * blocks[0]
    return out if finish is None else finish(out, *extra)
