"""The everyday commands that only read (`--help`, `designs`, `status`, `show`, `report`, and
`tricks` once its cache of trick descriptions is current) never import torch: each runs in a
fresh process where importing torch raises, and must still succeed with torch absent from
`sys.modules`."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.record import Record
from bench.store import Store
from tests.synthetic_store import cell

ROOT = Path(__file__).resolve().parents[1]
# exit with the command's code; 3 if it imported torch anyway (e.g. inside a try/except)
CODE = ("import sys; from bench.cli import main; rc = main(sys.argv[1:]); "
        "sys.exit(3 if sys.modules.get('torch') is not None else rc)")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    stub = tmp_path_factory.mktemp("stub")
    (stub / "torch").mkdir()
    (stub / "torch" / "__init__.py").write_text("raise ImportError('torch is blocked here')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(stub), str(ROOT)])}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    with Store(root) as s:
        for tricks, status in (((), "done"), (("spectral_norm",), "failed")):
            c = cell("ring8", tricks, 0)
            s.put(Record(cell_id=c.cell_id, variant_id=c.variant_id, label=c.label,
                         config=c.to_dict(), status=status, metrics={"modes": 8.0},
                         reason="RuntimeError: boom" if status == "failed" else "",
                         timings={"train_s": 1.0, "eval_s": 0.1, "ms_per_step": 1.0}))
    return root, c.cell_id


def run(env, *args):
    return subprocess.run([sys.executable, "-c", CODE, *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_the_stub_blocks_torch(env):
    assert subprocess.run([sys.executable, "-c", "import torch"], env=env,
                          capture_output=True).returncode != 0


@pytest.mark.parametrize("args", [["--help"], ["designs"], ["designs", "--json"],
                                  ["status", "--help"], ["show", "--help"], ["report", "--help"],
                                  ["train", "--help"], ["run", "--help"]])
def test_help_and_designs_run_without_torch(env, args):
    res = run(env, *args)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip()


def test_status_and_show_read_a_store_without_torch(env, store):
    root, failed_id = store
    res = run(env, "status", "--store", str(root))
    assert res.returncode == 0, res.stderr
    assert "RuntimeError: boom" in res.stdout
    res = run(env, "show", "--store", str(root))
    assert res.returncode == 0, res.stderr
    assert failed_id in res.stdout
    res = run(env, "show", "--store", str(root), "--cell", failed_id[:8])
    assert res.returncode == 0, res.stderr
    assert "spectral_norm" in res.stdout


def test_bad_input_to_a_torch_free_command_is_one_line_without_torch(env, tmp_path):
    res = run(env, "status", "--store", str(tmp_path / "none"))
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith("ganbench: error:")


def test_tricks_lists_from_its_cache_without_torch(env, tmp_path):
    """The first listing imports the tricks and caches their descriptions; later ones (torch
    blocked here) print the same from the cache."""
    cache = {"GANBENCH_CACHE": str(tmp_path / "cache")}
    full = {**os.environ, **cache, "PYTHONPATH": str(ROOT)}
    first = subprocess.run([sys.executable, "-m", "bench.cli", "tricks"], env=full,
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    for args in (["tricks"], ["tricks", "*noise*", "--json"], ["tricks", "--matrix"]):
        res = run({**env, **cache}, *args)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip()
    assert run({**env, **cache}, "tricks").stdout == first.stdout
    bad = run({**env, **cache}, "tricks", "nothing_like_it*")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_the_tricks_cache_follows_the_sources(tmp_path, monkeypatch):
    from bench.cli import trick_catalog

    src = tmp_path / "my_trick.py"
    src.write_text("x = 1\n")
    monkeypatch.setattr(trick_catalog, "source_files", lambda: ([src], ["mine=my_trick"]))
    before = trick_catalog.fingerprint()
    src.write_text("x = 22\n")  # an edited trick file
    assert trick_catalog.fingerprint() != before
    again = trick_catalog.fingerprint()
    monkeypatch.setattr(trick_catalog, "source_files", lambda: ([src], []))  # plug-in removed
    assert trick_catalog.fingerprint() != again
