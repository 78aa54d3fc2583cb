"""The eigenvectors a solve on the workers ends with, left there.

What the client needs of them (their residuals, their norms, the sign of each) is reduced on
the workers, and they reach M's row order as a dask array whose chunks are assembled on the
workers, so that a store can be written from there and no n-row array passes through the
client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import rowblocks
from .rowblocks import RowBlocks


@dataclass
class WorkerVectors:
    """(n, columns) vectors held as ``blocks`` in the ranges' order: ordered row i is M's row
    ``order[i]``; ``times(blocks)`` gives M @ blocks on the workers (float64)."""

    blocks: RowBlocks
    order: np.ndarray
    times: Callable[[RowBlocks], RowBlocks]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.order), self.blocks.columns

    def residual_norms(self, values: np.ndarray) -> np.ndarray:
        """|M v_j - lambda_j v_j| / |v_j| (NaN where a vector is not finite)."""
        norms = rowblocks.column_norms(self.blocks)
        residual = rowblocks.minus_times(self.times(self.blocks), self.blocks, np.diag(values))
        return rowblocks.column_norms(residual) / np.maximum(norms, np.finfo(float).tiny)

    def signs(self) -> np.ndarray:
        """+1 or -1 per column: the sign of its largest-magnitude entry, the first in M's row
        order among equal ones (``solve.deterministic_signs``)."""
        rows = self._ordered_rows()
        per_range = np.stack(
            self.blocks.client.gather(self.blocks.ranges.map(_largest, self.blocks.futures, rows))
        )  # (ranges, columns, [magnitude, row, sign])
        signs = np.ones(self.blocks.columns)
        for c in range(self.blocks.columns):
            top = per_range[:, c, 0].max()
            hits = per_range[per_range[:, c, 0] == top, c]
            sign = hits[np.argmin(hits[:, 1]), 2]
            signs[c] = sign if sign != 0 else 1.0
        return signs

    def in_row_order(self, scale: np.ndarray, chunk_rows: int):
        """A dask array (n, len(scale)) of the first columns times ``scale``, in M's row order:
        each chunk's rows are picked where each range lies, then put in place by one task (the
        row numbers travel scattered, not inside the tasks)."""
        import dask.array as da

        client, bounds, ranges = self.blocks.client, self.blocks.bounds, self.blocks.ranges
        n, columns = len(self.order), len(scale)
        position = np.empty(n, dtype=np.int64)  # the ordered row of each of M's rows
        position[self.order] = np.arange(n)
        owners, locals_, places, sizes = [], [], [], []
        for start in range(0, n, chunk_rows):
            wanted = position[start : start + chunk_rows]
            owner = np.searchsorted(bounds, wanted, side="right") - 1
            found = [(p, np.flatnonzero(owner == p)) for p in np.unique(owner)]
            owners.append([int(p) for p, _ in found])
            locals_ += [wanted[here] - bounds[p] for p, here in found]
            places.append([here for _, here in found])
            sizes.append(len(wanted))
        local_futures = iter(ranges.scatter_each([p for ps in owners for p in ps], locals_))
        place_futures = client.scatter(places, hash=False)
        chunks = []
        for ps, placed_at, size in zip(owners, place_futures, sizes, strict=True):
            picks = [
                client.submit(
                    _picked, self.blocks.futures[p], next(local_futures), columns,
                    workers=[ranges.workers[p]], allow_other_workers=True,
                )
                for p in ps
            ]  # fmt: skip
            chunk = client.submit(_placed, picks, placed_at, size, scale)
            chunks.append(da.from_delayed(chunk, shape=(size, columns), dtype=np.float64))
        return da.concatenate(chunks)

    def _ordered_rows(self) -> list:
        """Each range's rows as M's row numbers, on its worker."""
        bounds = self.blocks.bounds
        return self.blocks.ranges.scatter(
            [self.order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        )


def _largest(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per column: the largest magnitude, the first of M's rows holding it, and its sign."""
    out = np.tile([-1.0, np.inf, 1.0], (block.shape[1], 1))  # an empty range: never chosen
    if not len(block):
        return out
    magnitude = np.abs(block)
    for c in range(block.shape[1]):
        top = magnitude[:, c].max()
        hits = np.flatnonzero(magnitude[:, c] == top)
        first = hits[np.argmin(rows[hits])]
        out[c] = (top, rows[first], np.sign(block[first, c]))
    return out


def _picked(block: np.ndarray, rows: np.ndarray, columns: int) -> np.ndarray:
    return block[rows, :columns]


def _placed(picks: list, places: list, n_rows: int, scale: np.ndarray) -> np.ndarray:
    out = np.empty((n_rows, len(scale)))
    for values, where in zip(picks, places, strict=True):
        out[where] = values
    return out * scale[None, :]
