"""The ``"amg"`` solve placed on the Dask workers: the same block LOBPCG, with the operator and
every n-row block split into row ranges held by the workers (``rowblocks``).

The ranges follow spectral clusters of the kNN graph, so that most neighbor references stay
inside a range. The preconditioner is the client's cycle in two-level form: Chebyshev smoothing
on all of M in float32 (one task a range and step), aggregates that never cross ranges, and the
coarse level (its own multigrid hierarchy) in the client. The products with M go through I - W
and its transpose, each range reading the rows its rows reference. Measurements:
docs/design/eigen.md.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp

from .. import config
from ..exceptions import FallbackWarning
from ..tasks import memory
from . import inverse_workers, multigrid, rowblocks
from .kept import WorkerVectors
from .lobpcg import LobpcgResult, Stall, basis_from_gram, subspace_bound
from .resident import RangeSetup, ResidentOperator
from .rowblocks import RowBlocks

# A range's largest tasks, per row: B X formed for its rows and their halo and the product
# (float64, 20 columns), or the Gram matrices' stacked blocks.
RANGE_BYTES_PER_ROW = 1024
# iterations between two reseatings of the iteration's blocks (``_reseated``)
RESEAT_EVERY = 25
# where the Chebyshev smoother's state (step, residual, x) holds its step and its x
STEP_PART, X_PART = 0, 2


def row_bounds(n: int, client) -> np.ndarray:
    """Row range starts (and the end): a range for each thread of the client's workers (a
    range's tasks are the unit of work), more when a range would exceed
    ``eigen.worker-range-rows`` rows or, when that is None, what one task's memory budget holds
    (fewer, larger ranges mean fewer tasks: docs/design/eigen.md)."""
    threads = sum(worker["nthreads"] for worker in client.scheduler_info()["workers"].values())
    most = config.get("eigen.worker-range-rows") or memory.rows_within(RANGE_BYTES_PER_ROW)
    ranges = max(threads, math.ceil(n / int(most)))
    ranges = min(ranges, max(1, n // 50))
    return np.linspace(0, n, ranges + 1).round().astype(np.int64)


def _first_step(b: np.ndarray, d_inv: np.ndarray, scale: float) -> tuple:
    """Chebyshev's first step from zero, in d_inv's type: (step, residual, x)."""
    b = b.astype(d_inv.dtype, copy=False)
    step = d_inv[:, None] * b * scale
    return step, b, step


def _next_step(product: np.ndarray, state: tuple, d_inv: np.ndarray, a: float, c: float):
    """With product = A step: residual -= product; step = a step + c D^-1 residual; x += step,
    on the state (step, residual, x)."""
    step, residual, x = state
    residual = residual - product
    step = a * step + c * (d_inv[:, None] * residual)
    return step, residual, x + step


def _restricted(aggregation: sp.csr_array, r: np.ndarray) -> np.ndarray:
    return aggregation.T @ r


def _prolonged(state: tuple, aggregation: sp.csr_array, coarse: np.ndarray) -> np.ndarray:
    """The smoother's x plus the prolonged coarse correction."""
    return state[X_PART] + aggregation @ coarse


def _subtracted_from(product: np.ndarray, b: np.ndarray) -> np.ndarray:
    return b.astype(product.dtype, copy=False) - product


def _minus_row(block: np.ndarray, row: np.ndarray) -> np.ndarray:
    return block - row[None, :]


def _ones(rows: int) -> np.ndarray:
    return np.ones((rows, 1))


class WorkerProblem:
    """M = (I - W)^T (I - W) split into row ranges on the workers, with the two-level
    preconditioner: global Chebyshev smoothing, aggregates within ranges, coarse levels in the
    client. Every piece is built on the workers from B's rows held there (``resident``).

    Parameters
    ----------
    client : distributed.Client
    M : ResidentOperator
    order : a locality order of the rows: the ranges are contiguous slices of it
    rng : numpy Generator (aggregation and spectral radius estimates)
    bounds : the ranges' starts and end in ``order`` (``row_bounds`` for the client's workers)
    """

    def __init__(self, client, M: ResidentOperator, order: np.ndarray, rng, inverse=False,
                 bounds=None):  # fmt: skip
        n = M.shape[0]
        self.client, self.n = client, n
        self.bounds = row_bounds(n, client) if bounds is None else bounds
        self.ranges = rowblocks.Ranges.on(client, self.bounds)
        self.rows = [int(size) for size in np.diff(self.bounds)]  # each range's
        self.ones = RowBlocks(self.ranges, self.ranges.map(_ones, self.rows), 1)  # the constant
        setup = RangeSetup(self.ranges, M, order)
        self.M = setup.pieces()
        self.aggregations, ids, self.coarse_sizes = setup.aggregations()
        self.inverse = inverse_workers.built(self, setup, ids, rng) if inverse else None
        if self.inverse is None:
            self._cycle_for_M(setup, ids, rng)

    def _cycle_for_M(self, setup: RangeSetup, ids: np.ndarray, rng) -> None:
        """The two-level cycle for M: Chebyshev smoothing and the coarse levels."""
        # the preconditioner runs in float32, as in the client (the same iterations)
        self.M32 = self.M.astype(np.float32)
        self.shift = float(config.get("eigen.shift-fraction")) * float(setup.diagonal.mean())
        self.d_inv = setup.reciprocal_diagonal(self.shift)
        self.degree = int(config.get("eigen.chebyshev-degree"))
        # the spectral radius does not depend on the order of the rows: its products run on
        # the workers, in the ranges' order
        radius = multigrid.spectral_radius(setup.diagonal + self.shift, self._times_vector, rng)
        high, low = 1.1 * radius, radius / float(config.get("eigen.chebyshev-span"))
        self.centre, self.half_width = (high + low) / 2, (high - low) / 2
        self.coarse = multigrid.build_preconditioner(*setup.coarse_level(ids, self.shift), rng)

    def _times_vector(self, x: np.ndarray) -> np.ndarray:
        """(M + shift I) x for one vector in the ranges' order, through the workers."""
        shifted = self.M.apply(self.scattered(x.reshape(-1, 1)), shift=self.shift)
        return shifted.gather().ravel()

    def times(self, X: RowBlocks) -> RowBlocks:
        """M @ X, through I - W and its transpose."""
        return self.M.apply(X)

    def smooth(self, b: RowBlocks) -> RowBlocks:
        """``degree`` Chebyshev steps on (M + shift I) x = b from zero (Saad, Algorithm 12.1),
        in float32: the smoother's state (step, residual, x) per range."""
        sigma = self.centre / self.half_width
        rho = 1.0 / sigma
        state = rowblocks.map_blocks(_first_step, b, self.d_inv, scale=1.0 / self.centre)
        for _ in range(self.degree - 1):
            rho_next = 1.0 / (2.0 * sigma - rho)
            # only the step travels to the neighbor ranges; the update runs beside the product
            state = self.M32.apply(
                state,
                part=STEP_PART,
                shift=self.shift,
                finish=partial(_next_step, a=rho_next * rho, c=2.0 * rho_next / self.half_width),
                finish_args=(state, self.d_inv),
            )
            rho = rho_next
        return state

    def _residual(self, b: RowBlocks, x: RowBlocks, part: int | None = None) -> RowBlocks:
        """b - (M + shift I) x, one task per range (float32); x a smoother's state with
        ``part``."""
        return self.M32.apply(
            x, part=part, shift=self.shift, finish=_subtracted_from, finish_args=(b,)
        )

    def precondition(self, R: RowBlocks) -> RowBlocks:
        """M^+ R approximately (``inverse``), else one symmetric two-level cycle on R, in
        float32."""
        if self.inverse is not None:
            return self.inverse(R)
        x = self.smooth(R)
        residual = self._residual(R, x, part=X_PART)
        restricted = self.client.gather(
            rowblocks.map_blocks(_restricted, self.aggregations, residual).futures
        )
        correction = self.coarse(np.vstack(restricted))
        # scattered: inside the tasks, the scheduler (in this process, for a local cluster)
        # would hold every correction until the blocks' lineage is dropped
        split = self.ranges.scatter(np.split(correction, np.cumsum(self.coarse_sizes)[:-1]))
        x = rowblocks.map_blocks(_prolonged, x, self.aggregations, split)
        residual = self._residual(R, x)
        return rowblocks.map_blocks(_plus_smoothed, x, self.smooth(residual))

    def deflated(self, X: RowBlocks) -> RowBlocks:
        """X without its component along the constant vector."""
        return rowblocks.map_blocks(_minus_row, X, row=rowblocks.column_sums(X) / self.n)

    def projected_out(self, S: list[RowBlocks], X: RowBlocks) -> RowBlocks:
        """[S side by side] without its components along X (orthonormal, orthogonal to the
        constant vector) and along the constant vector: one reduction for both."""
        coefficients = rowblocks.gram([X, self.ones], S)
        coefficients[-1] /= self.n  # the constant vector's squared norm
        return rowblocks.minus_times(S, [X, self.ones], coefficients)

    def start(self, X: np.ndarray | RandomStart) -> RowBlocks:
        """The start block on the workers: X scattered, or a RandomStart drawn there."""
        if not isinstance(X, RandomStart):
            return self.scattered(X)
        seeds = [(X.seed, p) for p in range(len(self.rows))]
        return RowBlocks(
            self.ranges, self.ranges.map(_normal, self.rows, seeds, columns=X.columns), X.columns
        )

    def widened(self, X: RowBlocks, columns: int, seed: int) -> RowBlocks:
        """X with random columns drawn on the workers beside it, up to ``columns``."""
        if X.columns >= columns:
            return X
        extra = self.start(RandomStart(columns - X.columns, seed))
        return RowBlocks(self.ranges, self.ranges.map(_beside, X.futures, extra.futures), columns)

    def fresh(self, blocks: RowBlocks) -> RowBlocks:
        """blocks brought through this process and scattered again, a range at a time."""
        ranges = self.ranges
        return blocks.like([ranges.scatter_to(p, f.result()) for p, f in enumerate(blocks.futures)])

    def scattered(self, X: np.ndarray) -> RowBlocks:
        pieces = [
            X[start:stop] for start, stop in zip(self.bounds[:-1], self.bounds[1:], strict=True)
        ]
        return RowBlocks(self.ranges, self.ranges.scatter(pieces), X.shape[1])


@dataclass
class RandomStart:
    """A start block of standard normal columns drawn on the workers (the client never holds
    it): range p's rows from the generator seeded with (seed, p)."""

    columns: int
    seed: int


def _normal(rows: int, seed: tuple, columns: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, columns))


def _beside(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.hstack([left, right])


def _plus_smoothed(x: np.ndarray, state: tuple) -> np.ndarray:
    """x plus a smoother's x, in float64."""
    return np.add(x, state[X_PART], dtype=np.float64)


def lobpcg_on_workers(
    problem: WorkerProblem,
    X: RowBlocks,
    *,
    n_wanted: int,
    tol: float,
    max_iter: int,
    on_iteration=None,
    first_iteration: int = 0,
) -> tuple[np.ndarray, RowBlocks, int, float]:
    """``lobpcg.lobpcg`` on row blocks: the same Rayleigh-Ritz steps, with the Gram matrices
    reduced to the client and every n-row array left on the workers.

    ``on_iteration(n_iter, bound, X, theta)`` receives X as RowBlocks. Returns the Ritz values,
    vectors, the iteration count and the last bound.
    """
    block = X.columns
    X = problem.deflated(X)
    X = rowblocks.combine([X], basis_from_gram(rowblocks.gram(X, X)))
    AX = problem.times(X)
    theta, U = np.linalg.eigh(_symmetric(rowblocks.gram(X, AX)))
    X, AX = rowblocks.combine([X], U), rowblocks.combine([AX], U)
    P, n_iter, stalled = None, first_iteration, Stall()
    while True:
        R = rowblocks.minus_times(AX, X, np.diag(theta))
        bound = subspace_bound(theta, rowblocks.column_norms(R), n_wanted)
        if on_iteration is not None:
            on_iteration(n_iter, bound, X, theta)
        if bound <= tol or n_iter >= max_iter or (tol > 0 and stalled(bound)):
            return theta, X, n_iter, bound
        n_iter += 1
        S = problem.precondition(R)
        S = [S, P] if P is not None else [S]  # side by side
        for _ in range(2):  # once is not enough near convergence, when S is almost in span X
            S = problem.projected_out(S, X)
            S = [rowblocks.combine([S], basis_from_gram(rowblocks.gram(S, S)))]
        S = S[0]
        AS = problem.times(S)
        gram_A, gram = rowblocks.grams(([X, S], [AX, AS]), ([X, S], [X, S]))
        try:
            theta, U = _ritz(gram_A, gram, block)
        except np.linalg.LinAlgError:  # basis numerically dependent: restart without P
            P = None
            continue
        X, AX = rowblocks.combine([X, S], U), rowblocks.combine([AX, AS], U)
        P = rowblocks.combine([S], U[block:])
        if n_iter % RESEAT_EVERY == 0:
            X, AX, P = _reseated(problem, X, P)


def _reseated(problem: WorkerProblem, X: RowBlocks, P: RowBlocks):
    """X and P scattered afresh and AX recomputed. The scheduler keeps every task that a live
    block was computed from (its lineage), so without this its memory grows by each
    iteration's tasks (docs/design/eigen.md); scattered blocks have none. A range at a time:
    the client holds one range's rows, not the blocks."""
    X = problem.fresh(X)
    return X, problem.times(X), problem.fresh(P)


def _symmetric(A: np.ndarray) -> np.ndarray:
    return (A + A.T) / 2


def _ritz(gram_A: np.ndarray, gram: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    import scipy.linalg

    return scipy.linalg.eigh(_symmetric(gram_A), _symmetric(gram), subset_by_index=(0, block - 1))


def solve(
    client,
    M: ResidentOperator,
    order,
    X,
    n_components: int,
    *,
    rng,
    bounds: np.ndarray,
    reload=None,
    inverse: bool = False,
    **options,
) -> LobpcgResult:
    """``lobpcg_on_workers`` from the start block X (an array, or a RandomStart drawn on the
    workers); ``order`` is a locality order of M's rows (the ranges are slices of it), and X's
    rows and the n_components + 1 lowest vectors returned are in that order, its ranges
    ``bounds`` (those the order was made for, whatever workers are present). ``inverse``:
    precondition by solves with B and B^T (``inverse_workers``), unless their cycle does not
    converge on this graph; the block then widens for the cycle for M. ``options``: tol,
    max_iter, on_iteration and first_iteration.

    A worker lost during the solve does not end it: the solve starts again, on the workers the
    cluster has then, from the block that ``reload()`` gives (the store's, with its iteration),
    or without one from the block kept in this process every ``eigen.checkpoint-interval``
    seconds, up to ``eigen.worker-retries`` times, with a warning. Each start builds the same
    preconditioner (the same ranges and random numbers).
    """
    first, then = options.pop("first_iteration", 0), options.pop("on_iteration", None)
    kept = _KeptBlock(X, first, then, here=reload is None)
    retries = int(config.get("eigen.worker-retries"))
    seed = int(rng.integers(2**31 - 1))
    for attempt in range(retries + 1):
        rng = np.random.default_rng(seed)
        try:
            if attempt:  # scattered chunks are lost with their worker
                M = M.rebuilt()
            problem = WorkerProblem(client, M, order, rng, inverse=inverse, bounds=bounds)
            start = problem.start(kept.block)
            if inverse and problem.inverse is None:
                wide = n_components + config.get("eigen.lobpcg-extra-vectors")
                start = problem.widened(start, wide, int(rng.integers(2**31 - 1)))
            theta, X, n_iter, bound = lobpcg_on_workers(
                problem, start, n_wanted=n_components,
                first_iteration=kept.n_iter, on_iteration=kept, **options,
            )  # fmt: skip
            kept_vectors = rowblocks.combine([X], np.eye(len(theta))[:, : n_components + 1])
            vectors = WorkerVectors(kept_vectors, order, problem.times)
            return LobpcgResult(theta, vectors, n_iter, bound)
        except worker_lost() as exc:
            if attempt == retries:
                raise
            if reload is not None:  # the store's last block
                kept.block, kept.n_iter = reload() or (kept.block, kept.n_iter)
            warnings.warn(
                f"a worker was lost during the amg solve ({type(exc).__name__}); it starts "
                f"again from iteration {kept.n_iter} on the cluster's workers",
                FallbackWarning,
                stacklevel=2,
            )


def worker_lost() -> tuple[type, ...]:
    """The errors a lost worker raises in the client: its data cancelled or its tasks killed."""
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError
    from distributed.scheduler import KilledWorker

    return FutureCancelledError, KilledWorker, CommClosedError


class _KeptBlock:
    """The iteration callback that keeps the latest block (and its iteration) in this process
    every ``eigen.checkpoint-interval`` seconds (with ``here``), before calling the caller's
    callback."""

    def __init__(self, block: np.ndarray | RandomStart, n_iter: int, then=None, here=True):
        self.block, self.n_iter, self.then, self.here = block, n_iter, then, here
        self.interval = float(config.get("eigen.checkpoint-interval"))
        self.last = time.monotonic()

    def __call__(self, n_iter: int, bound: float, X: RowBlocks, theta: np.ndarray) -> None:
        due = time.monotonic() - self.last >= self.interval
        if self.here and n_iter > self.n_iter and due:
            self.block, self.n_iter, self.last = X.gather(), n_iter, time.monotonic()
        if self.then is not None:
            self.then(n_iter, bound, X, theta)
