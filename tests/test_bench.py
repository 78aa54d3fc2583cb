"""The benchmark harness: a real side-by-side run on a small case, and its flags."""

import json

from dasklle import cli


def test_bench_side_by_side(tmp_path, capsys):
    out = tmp_path / "runs.json"
    code = cli.main(
        ["bench", "swiss-1k", "--vs", "sklearn", "--data-dir", str(tmp_path), "--json", str(out)]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "swiss-1k     dasklle" in table and "swiss-1k     sklearn" in table
    assert "sklearn/dasklle time" in table and "sine(dasklle, sklearn)" in table
    runs = {r["side"]: r for r in json.loads(out.read_text())}
    assert set(runs) == {"dasklle", "sklearn"}
    for r in runs.values():
        assert r["error"] is None
        assert r["peak_mb"] > 50  # a Python process with numpy loaded, sampled while running
        assert r["quality"]["trust"] > 0.9
    d = runs["dasklle"]["stages"]
    assert {"neighbors", "weights", "assemble", "eigen", "write", "total"} <= set(d)
    assert runs["dasklle"]["quality"]["recall"] == 1.0  # exact kNN at this size
    # the data set is cached and marked complete, so a second run does not regenerate it
    assert (tmp_path / "swiss-1k.zarr" / "zarr.json").exists()


def test_bench_rejects_unknown_case(capsys):
    try:
        cli.main(["bench", "nope"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_m_dasklle_bench_is_the_bench_command():
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "dasklle.bench", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.startswith("usage: dasklle bench")
    assert "swiss-1k" in run.stdout and "--vs" in run.stdout
