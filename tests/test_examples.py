"""Every example runs (scaled down) and writes the pictures it promises."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = {
    "swiss_roll.py": ["swiss_roll.zarr", "swiss_roll-embedding.png", "swiss_roll-new-points.png"],
    "digits_784.py": ["digits_784.zarr", "digits_784-embedding.png", "digits_784-spectrum.png"],
    "digit_rotation.py": ["digit_rotation.png", "digit_rotation-images.png"],
    "digit_interpolation.py": ["digit_interpolation.png"],
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs_and_writes_its_files(script, tmp_path):
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--n-samples", "1500", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # the guards of conftest.py and pyproject.toml do not reach into a subprocess
    for bad_graph in ("Detected different `run_spec`", "Sending large graph"):
        assert bad_graph not in run.stderr, run.stderr[-3000:]
    for name in CASES[script]:
        path = tmp_path / name
        assert path.exists(), name
        if name.endswith(".png"):
            assert path.stat().st_size > 5_000, name


def test_slurm_example_prints_a_job_script():
    pytest.importorskip("dask_jobqueue")
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "slurm_dask_jobqueue.py"), "--dry-run", "--cores", "4"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "#SBATCH --cpus-per-task=4" in run.stdout
    assert "NUMBA_NUM_THREADS=4" in run.stdout


@pytest.mark.parametrize(
    ("prelude", "words"),
    [
        ("sys.modules['dask_jobqueue'] = None", "needs dask-jobqueue: pip install dask-jobqueue"),
        ("os.environ['PATH'] = ''", "no Slurm here (sbatch is not on PATH)"),
    ],
)
def test_the_slurm_example_says_why_it_cannot_run_and_exits_non_zero(prelude, words, tmp_path):
    script = EXAMPLES / "slurm_dask_jobqueue.py"
    code = (
        f"import os, runpy, sys; {prelude}; "
        f"sys.argv = ['slurm', {str(tmp_path / 'x.zarr')!r}]; "
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    if "PATH" in prelude:
        pytest.importorskip("dask_jobqueue")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert words in run.stderr and "Traceback" not in run.stderr
