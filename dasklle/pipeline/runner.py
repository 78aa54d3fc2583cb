"""One runner for every stage: fingerprints, checkpoints, resume, timing and progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dask.base import tokenize

from .. import config
from ..io.store import Checkpoints
from ..tasks import progress


def _nothing(fit: Any) -> tuple:
    return ()


@dataclass(frozen=True)
class Stage:
    """A pipeline stage, declared once.

    ``compute(fit)`` returns the stage's result. A stage with ``save`` and ``load`` is
    checkpointed: ``save(fit, result)`` gives the arrays and attributes to store, and
    ``load(fit, saved)`` rebuilds the result from them. ``depends(fit)`` lists the parameters
    the result depends on besides the input and the stages before it.
    """

    name: str
    compute: Callable[[Any], Any]
    depends: Callable[[Any], tuple] = _nothing
    save: Callable[[Any, Any], tuple[dict, dict]] | None = None
    load: Callable[[Any, dict], Any] | None = None
    settings: tuple[str, ...] = ()


class PartialState:
    """Where a running stage keeps and finds its unfinished state (``fit.partial``): a stage
    that saves ``progress`` here is resumed where that progress was, not from the start."""

    def __init__(self, checkpoints: Checkpoints | None, stage: str, fingerprint: str):
        self.checkpoints, self.stage, self.fingerprint = checkpoints, stage, fingerprint

    def save(self, progress_made: int, arrays: dict, attributes: dict | None = None) -> None:
        if self.checkpoints is not None:
            attributes = {**(attributes or {}), "progress": int(progress_made)}
            self.checkpoints.save_partial(self.stage, self.fingerprint, arrays, attributes)

    def load(self) -> dict | None:
        if self.checkpoints is None:
            return None
        return self.checkpoints.load_partial(self.stage, self.fingerprint)


@dataclass
class StageRunner:
    """Runs stages in order; with ``checkpoints``, saves each result and resumes matching ones.

    Each checkpointed stage's fingerprint chains the previous one's: a changed parameter
    invalidates the stage that uses it and every stage after it.
    """

    checkpoints: Checkpoints | None
    fingerprint: str
    verbose: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.begin(self.fingerprint)

    def run(self, stage: Stage, fit: Any) -> Any:
        stored = stage.save is not None and stage.load is not None
        if stored:
            changed = [config.changed(section) for section in stage.settings]
            changed = [c for c in changed if c]  # none at the defaults: fingerprints stay put
            self.fingerprint = tokenize(stage.name, self.fingerprint, *stage.depends(fit), *changed)
        start = time.perf_counter()
        with progress.stage(stage.name, self.verbose):
            result = self._resume(stage, fit) if stored else None
            if result is None:
                fit.partial = PartialState(self.checkpoints, stage.name, self.fingerprint)
                result = stage.compute(fit)
                if stored and self.checkpoints is not None:
                    self.checkpoints.save(stage.name, self.fingerprint, *stage.save(fit, result))
        self.timings[stage.name] = self.timings.get(stage.name, 0.0) + time.perf_counter() - start
        return result

    def _resume(self, stage: Stage, fit: Any) -> Any:
        if self.checkpoints is None:
            return None
        # a fit whose rows stay on the workers reads them there
        lazy = bool(getattr(fit, "resident", False))
        saved = self.checkpoints.load(stage.name, self.fingerprint, lazy=lazy)
        if saved is None:
            return None
        if self.verbose:
            progress.log(f"{stage.name}: resumed from the store's checkpoint")
        return stage.load(fit, saved)
