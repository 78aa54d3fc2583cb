"""scikit-learn's own LLE test module, run with dasklle's class and function in their place."""

import os
import subprocess
import sys
from pathlib import Path


def test_sklearn_lle_test_module_passes_with_dasklle():
    env = dict(os.environ, SKLEARN_RUN_FLOAT32_TESTS="1")  # all dtypes, not only float64
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.sklearn_substitute",
            "--pyargs",
            "sklearn.manifold.tests.test_locally_linear",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "LocallyLinearEmbedding is dasklle.estimator.LocallyLinearEmbedding" in run.stdout
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # 24 cases: every method, both solvers, float32 and float64.
    assert "24 passed" in run.stdout, run.stdout[-2000:]
