"""The estimator's parameters, declared once: name -> type and range.

The estimator validates its parameters from ``PARAMETERS`` (as scikit-learn's estimators declare
``_parameter_constraints``); the command line takes its choices and the sweep its checks from the
same table. Messages name the parameter, the value and the valid range.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = ("standard", "hessian", "modified", "ltsa")
EIGEN_SOLVERS = ("auto", "dense", "arpack", "factored", "lobpcg", "amg")
NEIGHBORS_ALGORITHMS = ("auto", "brute", "kd_tree", "ball_tree", "nndescent", "projected")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int, high: float = math.inf) -> int:
    """An integer in [low, high]."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer in [{low}, {high}]; got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value}.")
    return int(value)


def check_real(name: str, value: Any, low: float = 0.0) -> float:
    """A finite real number >= low."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number >= {low}; got {value!r}.")
    if not (math.isfinite(value) and value >= low):
        raise ValueError(f"{name} must be a finite real number >= {low}; got {value}.")
    return float(value)


def check_option(name: str, value: Any, options: tuple[str, ...]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}.")
    return value


@dataclass(frozen=True)
class Integer:
    low: int = 1
    optional: bool = False

    def check(self, name: str, value: Any) -> None:
        if not (self.optional and value is None):
            check_int(name, value, self.low)


@dataclass(frozen=True)
class Real:
    low: float = 0.0

    def check(self, name: str, value: Any) -> None:
        check_real(name, value, self.low)


@dataclass(frozen=True)
class Option:
    choices: tuple[str, ...]

    def check(self, name: str, value: Any) -> None:
        check_option(name, value, self.choices)


@dataclass(frozen=True)
class Kind:
    """A value of one of ``types`` (or None when ``optional``), described by ``what``."""

    types: tuple[type, ...]
    what: str
    optional: bool = True

    def check(self, name: str, value: Any) -> None:
        if not ((self.optional and value is None) or isinstance(value, self.types)):
            raise TypeError(f"{name} must be {self.what}; got {value!r}.")


class _Seed:
    """None, an integer, or a numpy RandomState or Generator."""

    def check(self, name: str, value: Any) -> None:
        if value is None or _is_int(value):
            return
        if isinstance(value, np.random.RandomState | np.random.Generator):
            return
        raise TypeError(f"{name} must be None, an integer or a numpy RandomState; got {value!r}.")


class _OptionalInteger:
    """None or any integer (``n_jobs``)."""

    def check(self, name: str, value: Any) -> None:
        if value is not None and not _is_int(value):
            raise TypeError(f"{name} must be None or an integer; got {value!r}.")


class _AutoOr:
    """``"auto"`` or a value that passes ``constraint``."""

    def __init__(self, constraint):
        self.constraint = constraint

    def check(self, name: str, value: Any) -> None:
        if isinstance(value, str) and value == "auto":
            return
        try:
            self.constraint.check(name, value)
        except (TypeError, ValueError) as exc:
            raise type(exc)(str(exc).replace(" must be ", " must be 'auto' or ", 1)) from None


_FLAG = Kind((bool, int, np.bool_), "True or False", optional=False)

# name -> constraint, for every parameter of LocallyLinearEmbedding
PARAMETERS: dict[str, Any] = {
    "n_neighbors": Integer(1),
    "n_components": Integer(1),
    "reg": Real(0.0),
    "eigen_solver": Option(EIGEN_SOLVERS),
    "tol": _AutoOr(Real(0.0)),
    "max_iter": _AutoOr(Integer(1)),
    "method": Option(METHODS),
    "hessian_tol": Real(0.0),
    "modified_tol": Real(0.0),
    "neighbors_algorithm": Option(NEIGHBORS_ALGORITHMS),
    "random_state": _Seed(),
    "n_jobs": _OptionalInteger(),
    "n_eigenvalues": Integer(1, optional=True),
    "chunk_rows": Integer(1, optional=True),
    "verbose": _FLAG,
    "resume": _FLAG,
    "overwrite": _FLAG,
    "store": Kind((str, os.PathLike), "None or a path to a zarr store"),
}


def check_parameters(params: Mapping[str, Any]) -> None:
    """Validate the estimator's parameters (data-independent ranges only) from ``PARAMETERS``."""
    for name, value in params.items():
        if name in PARAMETERS:
            PARAMETERS[name].check(name, value)


def check_data_dependent(
    n_samples: int,
    n_features: int,
    n_neighbors: int,
    n_components: int,
    method: str,
    n_eigenvalues: int | None = None,
) -> None:
    """Ranges that depend on the data's shape."""
    if n_samples < 2:
        raise ValueError(f"X must have at least 2 samples; got n_samples = {n_samples}.")
    if n_neighbors >= n_samples:
        raise ValueError(
            f"Expected n_neighbors < n_samples, but n_samples = {n_samples}, "
            f"n_neighbors = {n_neighbors}: n_neighbors must be in [1, {n_samples - 1}]."
        )
    if n_components > n_features:
        raise ValueError(
            f"n_components must be <= the input dimension {n_features}; got {n_components} "
            "(output dimension must be less than or equal to input dimension)."
        )
    if n_components >= n_samples:
        raise ValueError(f"n_components must be < n_samples = {n_samples}; got {n_components}.")
    if n_eigenvalues is not None and n_eigenvalues >= n_samples:
        raise ValueError(f"n_eigenvalues must be < n_samples = {n_samples}; got {n_eigenvalues}.")
    if method == "hessian":
        needed = n_components * (n_components + 3) // 2
        if n_neighbors <= needed:
            raise ValueError(
                "for method='hessian', n_neighbors must be greater than "
                f"[n_components * (n_components + 3) / 2] = {needed}; got {n_neighbors}."
            )
    if method == "modified" and n_neighbors < n_components:
        raise ValueError(
            "modified LLE requires n_neighbors >= n_components; "
            f"got n_neighbors = {n_neighbors}, n_components = {n_components}."
        )
