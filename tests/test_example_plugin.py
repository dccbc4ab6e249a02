"""examples/lsgan_loss, installed as a separate package into a temporary folder, is found through
its entry point: its own tests pass, and `ganbench compare` trains and reports it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_compare import TINY  # the same tiny compare grid

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lsgan_loss"
CLI = "import sys; from bench.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = tmp / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(site), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return tmp, site, env


def test_example_package_tests_pass_when_installed(installed):
    _, _, env = installed
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(EXAMPLE), str(EXAMPLE / "tests")],
                         env=env, capture_output=True, text=True, timeout=300, cwd=EXAMPLE)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 passed" in res.stdout


def test_compare_runs_the_installed_plugin(installed):
    tmp, _, env = installed
    grid = tmp / "tiny.toml"
    grid.write_text(TINY)
    store = tmp / "store"
    res = subprocess.run([sys.executable, "-c", CLI, "compare", "--trick", "lsgan_loss",
                          "--grid", str(grid), "--store", str(store), "--workers", "1",
                          "--curve-every", "0"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    table = res.stdout.split("ring8, add-one", 1)[1]
    assert "lsgan_loss" in table and "Δ high_quality [95% CI]" in table
    assert (store / "compare-lsgan_loss" / "index.md").exists()
    # the report reads the plug-in's version from its source, through the entry point
    code = ("from bench.core.trick_versions import installed_trick_versions as v; "
            "import sys; print(v()['lsgan_loss']); assert 'torch' not in sys.modules")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "1", res.stderr
