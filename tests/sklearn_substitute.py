"""A pytest plugin that puts dasklle's estimator and function in place of scikit-learn's.

Used by test_sklearn_suite.py to run scikit-learn's own LLE test module against dasklle:
``python -m pytest -p tests.sklearn_substitute --pyargs sklearn.manifold.tests.test_locally_linear``
"""

import sklearn.manifold

import dasklle


def pytest_configure(config):
    sklearn.manifold.LocallyLinearEmbedding = dasklle.LocallyLinearEmbedding
    sklearn.manifold.locally_linear_embedding = dasklle.locally_linear_embedding


def pytest_report_header(config):
    cls = sklearn.manifold.LocallyLinearEmbedding
    return f"sklearn.manifold.LocallyLinearEmbedding is {cls.__module__}.{cls.__qualname__}"
