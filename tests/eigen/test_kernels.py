"""The numba row kernels: results independent of the thread count; numba loaded only for them."""

import subprocess
import sys

import dask
import numpy as np

from dasklle.eigen.cost import CostOperator

from .conftest import random_weight_matrix


def test_row_kernels_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(6)
    op = CostOperator.from_weights(random_weight_matrix(301, 7, rng))
    X = rng.standard_normal((301, 5))
    results = []
    for threads in [1, 2, 3]:
        with dask.config.set(
            {"dasklle.eigen.row-kernel-min-rows": 0, "dasklle.eigen.threads": threads}
        ):
            results.append(op @ X)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_numba_is_imported_only_when_a_row_kernel_runs():
    code = """
import sys
import numpy as np
import dasklle.eigen
from dasklle.eigen.cost import CostOperator
op = CostOperator.from_weights(np.eye(50, k=1) + np.eye(50, k=-49))
op @ np.ones((50, 2))
assert "numba" not in sys.modules, "numba imported below eigen.row-kernel-min-rows"
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
