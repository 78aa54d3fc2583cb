"""The exceptions and warnings dasklle raises, all exported from ``dasklle``."""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning


class InputError(ValueError):
    """An input that dasklle cannot read: unknown format, missing path, unusable contents."""


class DisconnectedGraphWarning(UserWarning):
    """The k-nearest-neighbor graph falls apart into several pieces."""


class EigenConvergenceWarning(ConvergenceWarning):
    """The eigen solver stopped before its residual (``amg``: its error bound) reached ``tol``,
    at ``max_iter`` or, for ``amg``, where the bound stopped falling.

    A scikit-learn ``ConvergenceWarning``, so existing filters for it apply.
    """


class FallbackWarning(RuntimeWarning, UserWarning):
    """The method asked for could not run as asked, and the one named in the message ran instead."""
