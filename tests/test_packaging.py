"""The built wheel works outside the checkout: it holds the suite's packages and presets (and
nothing else), `import ganbench` gives the plug-in API, presets and tricks load from it."""
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources, so the shared checkout gets no build/ or egg-info."""
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("bench", "tricks", "ganbench", "benchmarks", "tests"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(src)],
                   check=True, capture_output=True, cwd=src)
    (whl,) = out.glob("ganbench-*.whl")
    return whl


def test_wheel_holds_only_the_suites_packages_and_the_presets(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"bench", "tricks", "ganbench"}
    assert {"bench/grids/smoke.toml", "bench/grids/cpu-default.toml"} <= set(names)


def test_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    # -S: no site-packages .pth files, so the checkout's editable install cannot leak in; the
    # venv's site-packages is on the path only for torch and the other dependencies
    deps = sysconfig.get_paths()["purelib"]
    script = (
        "import json, bench, ganbench\n"
        "from bench.schedule.grid import load_grid\n"
        "from bench.trickapi.registry import list_tricks\n"
        "from tricks import Trick, register_trick\n"
        "from bench.cli import main\n"
        "grid = load_grid('smoke')\n"
        "print(json.dumps({'bench': bench.__file__, 'cells': len(grid.cells),\n"
        "                  'tricks': list_tricks(), 'version': ganbench.__version__,\n"
        "                  'same_api': Trick is ganbench.Trick and register_trick is ganbench.register_trick}))\n"
    )
    env = {"PYTHONPATH": f"{target}:{deps}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "GANBENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["bench"].startswith(str(target))
    assert info["cells"] > 0 and "spectral_norm" in info["tricks"] and info["same_api"]
    version = subprocess.run([sys.executable, "-S", "-c",
                              "import sys; from bench.cli import main; sys.exit(main(['--version']))"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert version.returncode == 0 and version.stdout.strip() == f"ganbench {info['version']}"
