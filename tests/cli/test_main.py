"""main: one-line errors with exit code 2, bad flags, --help."""

import numpy as np
import pytest

from dasklle.cli import main


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["embed", "missing.npy", "--out", "o.zarr"], "does not exist"),
        (["info", "missing.zarr"], "cannot open"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_bad_flags_exit_2(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["embed", "x.npy"])  # --out missing
    assert exc.value.code == 2
    np.save(tmp_path / "x.npy", np.ones((10, 3)))
    assert (
        main(
            [
                "embed",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "o.zarr"),
                "--n-neighbors",
                "0",
                "--scheduler",
                "synchronous",
            ]
        )
        == 2
    )


@pytest.mark.parametrize("command", ["demo", "embed", "sweep", "plot", "info"])
def test_help_names_every_flag_with_its_default(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: dasklle " + command in out
    if command in ("demo", "embed", "sweep"):
        assert "--scheduler-address" in out and "(default: 1)" in out  # --threads-per-worker
        assert "--n-neighbors" in out and "(default:" in out


def _commands():
    import argparse

    from dasklle.cli import build_parser

    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices


@pytest.mark.parametrize("command", ["demo", "embed", "sweep", "plot", "info", "bench"])
def test_help_shows_the_default_each_flag_really_has(command):
    parser = _commands()[command]
    formatter = parser._get_formatter()
    for action in parser._actions:
        text = formatter._get_help_string(action) or ""
        assert text.count("(default:") <= 1, text
        assert "(default: None)" not in text and "(default: False)" not in text
        if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
            assert "(default: %(default)s)" in text, text  # argparse fills in the real one
    if command == "demo":
        defaults = parser.parse_args([])
        assert (defaults.n_neighbors, defaults.n_eigenvalues) == (12, 10)
    if command == "embed":  # None: as many eigenvalues as components (the estimator's default)
        defaults = parser.parse_args(["x.npy", "--out", "o.zarr"])
        assert (defaults.n_neighbors, defaults.n_eigenvalues) == (10, None)


def test_help_imports_no_heavy_module():
    import subprocess
    import sys

    heavy = ("dask", "zarr", "sklearn", "distributed", "scipy", "pandas", "numba", "matplotlib")
    code = (
        "import sys; from dasklle.cli import build_parser; build_parser().format_help(); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_python_m_dasklle_is_the_command_line():
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "dasklle", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.startswith("usage: dasklle")
    assert all(name in run.stdout for name in ("demo", "embed", "sweep", "plot", "info", "bench"))


@pytest.mark.parametrize(
    ("limit", "threads", "words"),
    [
        ("300MiB", "1", "gives each worker thread 300.00 MiB"),
        ("1GiB", "4", "gives each worker thread 256.00 MiB"),
        ("3xx", "1", "is not a size"),
    ],
)
def test_workers_too_small_for_a_task_are_refused_before_they_start(
    limit, threads, words, capsys, tmp_path
):
    np.save(tmp_path / "x.npy", np.zeros((300, 3), np.float32))
    argv = ["embed", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.zarr")]
    argv += ["--n-workers", "1", "--memory-limit", limit, "--threads-per-worker", threads]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "--memory-limit" in err and "\n" not in err
    assert not (tmp_path / "o.zarr").exists()
