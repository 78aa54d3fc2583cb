"""n-row blocks held on the Dask workers, one numpy block per row range, and the operations the
eigen iteration needs on them: products with M = B^T B (B split into the same ranges), linear
combinations with small matrices, and Gram matrices reduced to the client.

Only (columns x columns) matrices and the coarse levels reach the client. A product's task for
one row range reads its own block and, from the other ranges, only the rows its rows reference
(its halo, cut where each block lives; a locality ordering keeps it small).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Ranges:
    """Row ranges (``bounds``: starts and the end) and the worker that holds each.

    Every task of range p asks for ``workers[p]``, so a range's blocks, operator piece and
    updates stay together and only the halos move; the scheduler would otherwise place each
    task by its inputs' bytes and move whole blocks between workers every iteration. The
    restriction is loose: if that worker leaves, the tasks run where its data went.
    """

    client: object
    bounds: np.ndarray
    workers: list[str]

    @classmethod
    def on(cls, client, bounds: np.ndarray) -> Ranges:
        """Consecutive ranges to the same worker (the locality order keeps their halo within),
        each worker's share of the ranges in proportion to its threads."""
        workers = client.scheduler_info()["workers"]
        slots = [name for name in sorted(workers) for _ in range(workers[name]["nthreads"])]
        n_ranges = len(bounds) - 1
        owners = [slots[p * len(slots) // n_ranges] for p in range(n_ranges)]
        return cls(client, bounds, owners)

    def by_worker(self):
        """(worker, the ranges it holds) for each worker."""
        for address in dict.fromkeys(self.workers):
            yield address, [p for p, owner in enumerate(self.workers) if owner == address]

    def _placed(self, submit) -> list:
        """submit(address, ranges) for each worker, its futures put back in range order."""
        out = [None] * len(self.workers)
        for address, ranges in self.by_worker():
            for p, future in zip(ranges, submit(address, ranges), strict=True):
                out[p] = future
        return out

    def map(self, function, *per_range, **kwargs) -> list:
        """function(per_range[0][p], per_range[1][p], ..., **kwargs) on range p's worker."""
        return self._placed(
            lambda address, ranges: self.client.map(
                function,
                *[[values[p] for p in ranges] for values in per_range],
                workers=[address],
                allow_other_workers=True,
                **kwargs,
            )
        )

    def scatter_to(self, p: int, value):
        """value scattered to range p's worker, or anywhere if it has left."""
        return self.scatter_each([p], [value])[0]

    def scatter_each(self, owners: list[int], values: list) -> list:
        """values[i] scattered to range owners[i]'s worker, or anywhere if it has left."""
        present = self.client.scheduler_info()["workers"]
        out, by_worker = [None] * len(values), {}
        for i, p in enumerate(owners):
            by_worker.setdefault(self.workers[p], []).append(i)
        for address, items in by_worker.items():
            futures = self.client.scatter(
                [values[i] for i in items],
                workers=[address] if address in present else None,
                hash=False,  # keys of its own: see ``tasks.blocks.to_workers``
            )
            for i, future in zip(items, futures, strict=True):
                out[i] = future
        return out

    def scatter(self, per_range: list) -> list:
        """per_range[p] scattered to range p's worker, or anywhere if it has left (a retired
        worker's tasks then follow its data, where it went)."""
        return self.scatter_each(list(range(len(per_range))), per_range)


@dataclass
class RowBlocks:
    """An (n, columns) array on the workers: ``futures[p]`` holds the rows of range p."""

    ranges: Ranges
    futures: list
    columns: int
    _gathered: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def client(self):
        return self.ranges.client

    @property
    def bounds(self) -> np.ndarray:
        return self.ranges.bounds

    def like(self, futures: list, columns: int | None = None) -> RowBlocks:
        return RowBlocks(self.ranges, futures, self.columns if columns is None else columns)

    def to_dask(self):
        """The array as a dask array of the blocks where they lie (float64)."""
        import dask.array as da

        rows = np.diff(self.bounds).astype(int)
        return da.concatenate(
            [
                da.from_delayed(future, shape=(int(r), self.columns), dtype=np.float64)
                for future, r in zip(self.futures, rows, strict=True)
            ]
        )

    def gather(self) -> np.ndarray:
        """The whole array in the client (a kept block without a store, the spectral radius'
        vectors), gathered once however often it is asked for."""
        if self._gathered is None:
            self._gathered = np.vstack(self.client.gather(self.futures))
        return self._gathered


def _stacked_times(blocks: list[np.ndarray], matrix: np.ndarray) -> np.ndarray:
    return np.hstack(blocks) @ matrix if len(blocks) > 1 else blocks[0] @ matrix


def per_range(parts: list[RowBlocks]) -> list[list]:
    """The parts' futures grouped by range (one map call then submits every range's task)."""
    return [list(futures) for futures in zip(*(part.futures for part in parts), strict=True)]


def combine(parts: list[RowBlocks], matrix: np.ndarray) -> RowBlocks:
    """[parts side by side] @ matrix, row range by row range."""
    first = parts[0]
    futures = first.ranges.map(_stacked_times, per_range(parts), matrix=matrix)
    return first.like(futures, matrix.shape[1])


def _stacked_gram(left: list[np.ndarray], right: list[np.ndarray]) -> np.ndarray:
    return np.hstack(left).T @ np.hstack(right)


def _sum(parts: list[np.ndarray]) -> np.ndarray:
    return np.sum(parts, axis=0)


def _reduced(client, parts: list, fan_in: int = 8, combine=_sum):
    """A future of the sum of the futures' arrays (``combine``: of their values as it adds
    them), by a tree of tasks."""
    while len(parts) > 1:
        parts = client.map(combine, [parts[i : i + fan_in] for i in range(0, len(parts), fan_in)])
    return parts[0]


def reduce_sum(client, parts: list, fan_in: int = 8, combine=_sum):
    """The sum of the futures' arrays (``combine``: of their values as it adds them), by a
    tree of tasks, in the client."""
    return _reduced(client, parts, fan_in, combine).result()


def _listed(parts: RowBlocks | list[RowBlocks]) -> list[RowBlocks]:
    return [parts] if isinstance(parts, RowBlocks) else parts


def _gram_future(left, right):
    left, right = _listed(left), _listed(right)
    ranges = left[0].ranges
    return _reduced(ranges.client, ranges.map(_stacked_gram, per_range(left), per_range(right)))


def gram(left: RowBlocks | list[RowBlocks], right: RowBlocks | list[RowBlocks]) -> np.ndarray:
    """[left side by side]^T [right side by side], summed over the row ranges, in the client."""
    return _gram_future(left, right).result()


def grams(*pairs: tuple) -> list[np.ndarray]:
    """``gram(left, right)`` of each (left, right) pair, brought to the client together (one
    wait rather than one a pair)."""
    futures = [_gram_future(left, right) for left, right in pairs]
    return futures[0].client.gather(futures)


def _column_sums(block: np.ndarray) -> np.ndarray:
    return block.sum(axis=0)


def column_sums(blocks: RowBlocks) -> np.ndarray:
    return reduce_sum(blocks.client, blocks.ranges.map(_column_sums, blocks.futures))


def column_norms(blocks: RowBlocks) -> np.ndarray:
    return np.sqrt(np.maximum(np.diag(gram(blocks, blocks)), 0.0))


def _minus_times(X: list[np.ndarray], Y: list[np.ndarray], matrix: np.ndarray) -> np.ndarray:
    return (np.hstack(X) if len(X) > 1 else X[0]) - _stacked_times(Y, matrix)


def minus_times(
    X: RowBlocks | list[RowBlocks], Y: RowBlocks | list[RowBlocks], matrix: np.ndarray
) -> RowBlocks:
    """[X side by side] - [Y side by side] @ matrix."""
    X, Y = _listed(X), _listed(Y)
    futures = X[0].ranges.map(_minus_times, per_range(X), per_range(Y), matrix=matrix)
    return X[0].like(futures, sum(part.columns for part in X))


def map_blocks(function, *parts: RowBlocks | list, **kwargs) -> RowBlocks:
    """function(block_p of each part, ...) per row range; a list gives one argument per range.
    The result has the columns of the first RowBlocks among the parts."""
    first = next(part for part in parts if isinstance(part, RowBlocks))
    iterables = [part.futures if isinstance(part, RowBlocks) else part for part in parts]
    return first.like(first.ranges.map(function, *iterables, **kwargs))


class CostMatrix:
    """M = B^T B on the workers, B sparse (n, n) split into the row ranges of ``bounds``: one
    task per range and product, which forms the rows of B X its own rows need itself (rather
    than a second round of tasks).

    A range reads the blocks of its own worker's ranges where they lie, and from each range on
    another worker one halo: the rows that any range of its worker references there, cut by
    one task where that block lives. Tasks then grow with ranges x workers, not ranges^2.

    ``pieces[p]`` (futures) holds range p's rows of B, split by the columns of each source in
    ``sources[p]`` (p first), and its rows of B^T; ``halos[(q, worker)]`` is a future of the
    rows of block q that worker's ranges read. ``resident.RangeSetup.pieces`` builds them.
    """

    def __init__(
        self, ranges: Ranges, pieces: list, sources: list[list[int]], halos: dict, sent_rows: int
    ):
        self.ranges, self.pieces, self.sources, self.halos = ranges, pieces, sources, halos
        self.sent_rows = sent_rows  # the rows a product sends between workers

    def astype(self, dtype) -> CostMatrix:
        """The same matrix in dtype, converted on the workers."""
        pieces = self.ranges.map(_piece_as, self.pieces, dtype=dtype)
        return CostMatrix(self.ranges, pieces, self.sources, self.halos, self.sent_rows)

    def apply(
        self, X: RowBlocks, *, part=None, shift=0.0, finish=None, finish_args=()
    ) -> RowBlocks:
        """finish((M + shift I) @ X_p, *finish_args_p) per range (M @ X by default); each of
        ``finish_args`` is a RowBlocks or a per-range list. With ``part``, X's blocks are
        tuples and their element ``part`` is multiplied (no task extracts it first)."""
        futures = self.ranges.map(
            _cost_product, self.pieces, self._read(X, part), self._extras(finish_args),
            shift=float(shift), finish=finish, part=part,
        )  # fmt: skip
        return X.like(futures)

    def apply_linear(
        self, pieces: list, X: RowBlocks, transpose: bool = False, finish=None, finish_args=()
    ) -> RowBlocks:
        """finish(B @ X_p, *finish_args_p) per range (B^T @ X with ``transpose``; the product
        by default): ``pieces`` from ``RangeSetup.linear_pieces`` read M's halos."""
        futures = self.ranges.map(
            _linear_product, pieces, self._read(X), self._extras(finish_args),
            transpose=transpose, finish=finish,
        )  # fmt: skip
        return X.like(futures)

    def _extras(self, finish_args) -> list[list]:
        """Each range's ``finish`` arguments: a RowBlocks' block or a per-range list's item."""
        return [
            [a.futures[p] if isinstance(a, RowBlocks) else a[p] for a in finish_args]
            for p in range(len(self.pieces))
        ]

    def _read(self, X: RowBlocks, part=None) -> list[list]:
        """The blocks each range reads, in its sources' order: its worker's in place, the
        others' halos cut by one task where each block lives."""
        client, owners = self.ranges.client, self.ranges.workers
        cut = {
            (q, worker): client.submit(
                _rows_of,
                X.futures[q],
                rows,
                part,
                workers=[owners[q]],
                allow_other_workers=True,
            )
            for (q, worker), rows in self.halos.items()
        }
        return [
            [cut.get((q, owners[p]), X.futures[q]) for q in sources]
            for p, sources in enumerate(self.sources)
        ]


def _of(block, part):
    return block if part is None else block[part]


def _rows_of(block, rows: np.ndarray, part=None) -> np.ndarray:
    return _of(block, part)[rows]


def _piece_as(piece, dtype):
    parts, local_BT = piece
    return [part.astype(dtype) for part in parts], local_BT.astype(dtype)


def _cost_product(piece, blocks, extra, shift, finish, part=None):
    parts, local_BT = piece
    # a halo is cut already; a block read in place may be a tuple
    blocks = [block if isinstance(block, np.ndarray) else _of(block, part) for block in blocks]
    # B's rows times the sources' blocks side by side, without stacking them
    formed = parts[0] @ blocks[0]
    for rows, block in zip(parts[1:], blocks[1:], strict=True):
        formed += rows @ block
    out = local_BT @ formed
    if shift:
        out += shift * blocks[0]
    return out if finish is None else finish(out, *extra)


def _linear_product(piece, blocks, extra, transpose: bool, finish) -> np.ndarray:
    """A range's rows of B X (its columns of B^T X with ``transpose``): each part of the piece
    times the block of the range it reads."""
    parts = piece[1] if transpose else piece[0]
    out = parts[0] @ blocks[0]
    for columns, block in zip(parts[1:], blocks[1:], strict=True):
        out += columns @ block
    return out if finish is None else finish(out, *extra)
