"""`ganbench report`: every table in three formats, figures, index, and no torch import."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from tests.synthetic_store import build

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    build(root).store.close()
    out = root / "report"
    assert main(["report", "--store", str(root), "--out", str(out)]) == 0
    return root, out


def test_tables_per_dataset_and_design(report):
    _, out = report
    names = {p.stem for p in (out / "tables").glob("*.md")}
    assert {"synth-ring8-add-one", "synth-ring8-pairs", "synth-ring8-pairs-interactions",
            "synth-ring8-factorial", "synth-ring8-factorial-effects",
            "synth-ring8-leave-one-out", "synth-digits-add-one", "synth-tune-ring8-add-one",
            "synth-tune-ring8-add-one-tuned"} <= names
    for stem in names:
        for ext in (".md", ".tex", ".csv"):
            assert (out / "tables" / f"{stem}{ext}").stat().st_size > 0
    md = (out / "tables" / "synth-ring8-add-one.md").read_text()
    lines = [l for l in md.splitlines() if l.startswith("| ")]
    assert lines[1].startswith("| baseline |")  # baseline first
    assert "**0.51 ± 0.0359 (5)**" in md  # the true best high_quality in bold
    assert "high_quality ↑" in md and "reverse_kl ↓" in md
    digits = (out / "tables" / "synth-digits-add-one.md").read_text()
    for m in ("Δ fid", "Δ kid_mean", "Δ precision", "Δ recall", "Δ modes"):
        assert m in digits


def test_latex_fragment_balanced_with_right_column_count(report):
    _, out = report
    for tex in (out / "tables").glob("*.tex"):
        text = tex.read_text()
        body = text.replace(r"\{", "").replace(r"\}", "")
        assert body.count("{") == body.count("}"), tex.name
        spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", text).group(1)
        assert "\\toprule" in text and "\\bottomrule" in text
        rows = [l for l in text.splitlines() if l.endswith(r"\\")]
        for row in rows:  # every row has as many cells as the column spec
            assert len(re.split(r"(?<!\\)&", row)) == len(spec), (tex.name, row)


def test_every_figure_exists_is_small_and_indexed(report):
    _, out = report
    index = (out / "index.md").read_text()
    pngs = sorted((out / "figures").glob("*.png"))
    kinds = {p.name.split("-")[0] for p in pngs}
    assert {"summary.png", "forest", "curves", "losses", "interactions"} <= kinds | {"summary.png"}
    assert (out / "figures" / "summary.png").exists()
    for png in pngs:  # small by design (a few inches at 200 dpi), never by fewer pixels
        assert 0 < png.stat().st_size <= 400_000, png.name
        assert png.with_suffix(".pdf").stat().st_size > 0  # a PDF beside it (--no-pdf: none)
        assert f"figures/{png.name}" in index
    for md in (out / "tables").glob("*.md"):
        assert f"tables/{md.name}" in index
    samples = list((out / "samples").glob("*.png"))
    assert len(samples) == 14  # one sheet per variant and dataset (per grid), a panel per seed
    assert all(0 < p.stat().st_size <= 400_000 for p in samples)
    assert "seeds [0, 1, 2, 3, 4]" in index and "N = 2500" in index
    assert "diverged 1" in index and "not-applicable" in index


def test_report_runs_with_torch_unimportable(report, tmp_path):
    root, _ = report
    stub = tmp_path / "stub"
    (stub / "torch").mkdir(parents=True)
    (stub / "torch" / "__init__.py").write_text("raise ImportError('torch is blocked in this test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stub), str(ROOT)])}
    code = ("import sys; from bench.cli import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules or sys.modules['torch'] is None; sys.exit(rc)")
    out = tmp_path / "r"
    res = subprocess.run([sys.executable, "-c", code, "report", "--store", str(root), "--out",
                          str(out), "--grid", "synth-tune"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (out / "index.md").exists() and list((out / "samples").glob("*.png"))
    res = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True)
    assert res.returncode != 0  # the stub really blocks torch


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert main(["report", "--store", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganbench: error: no store")
    assert not (tmp_path / "o").exists() and not (tmp_path / "none").exists()


def test_workers_below_one_is_one_line(report, tmp_path, capsys):
    root, _ = report
    assert main(["report", "--store", str(root), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--workers must be >= 1" in err[0]
    assert not (tmp_path / "o").exists()


def test_unknown_grid_is_an_error(report, tmp_path, capsys):
    root, _ = report
    assert main(["report", "--store", str(root), "--grid", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "no grid 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unwritable_out_is_one_line(report, tmp_path, capsys):
    root, _ = report
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["report", "--store", str(root), "--out", str(blocker / "r"), "--no-samples",
                 "--grid", "synth-tune"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganbench: error: cannot write the report")


def test_a_partly_trained_grid_says_what_it_lacks_per_variant(tmp_path):
    """A grid trained part by part (`run --only`), or still running: each table and the index
    name the variants short of seeds; a grid's own D lr shows in the protocol line."""
    import dataclasses

    from bench.core.config import OptimConfig
    from bench.core.record import Record
    from bench.report.build import write_report
    from tests.synthetic_store import SEEDS, SyntheticStore, cell, metrics_2d

    s = SyntheticStore(tmp_path)
    members = []
    for seed in SEEDS:  # the baseline with its own D lr (as paper-2d's cells) and G loss
        c = cell("ring8", (), seed, lr=1e-3)
        c = dataclasses.replace(c, train=dataclasses.replace(c.train, g_loss="minimax",
                                                             d_optim=OptimConfig(lr=1e-4)))
        s.store.put(Record(cell_id=c.cell_id, variant_id=c.variant_id, label=c.label,
                           config=c.to_dict(), status="done", step=500,
                           metrics=metrics_2d((), seed),
                           protocol={"kind": "2d", "dataset": "ring8", "num_generated": 2500}))
        members.append(s.member("add-one", "ring8", c, "baseline"))
    for seed in SEEDS:  # 2 of 5 seeds stored, and a variant with none
        sn = s.add("ring8", ("spectral_norm",), seed) if seed < 2 else \
            cell("ring8", ("spectral_norm",), seed)
        members.append(s.member("add-one", "ring8", sn, "variant"))
        members.append(s.member("add-one", "ring8", cell("ring8", ("unrolled",), seed),
                                "variant"))
    s.store.put_grid("partial", {"description": "partial", "designs": {"ring8": "add-one"}},
                     members)
    s.store.close()
    report = write_report(tmp_path, tmp_path / "r", grid="partial", samples=False)
    (table,) = report.tables
    assert table.notes[-1] == ("Not stored yet (8 cell(s); `ganbench status --grid partial` "
                               "lists them): spectral_norm 2/5 seeds, unrolled 0/5 seeds.")
    tex = next((tmp_path / "r" / "tables").glob("*.tex")).read_text()
    assert tex.split("\\end{tabular}")[1].count("\\par") == len(table.notes) + 1
    assert ("Not stored yet (8 cell(s); \\texttt{ganbench status --grid partial} lists them): "
            "spectral\\_norm 2/5 seeds, unrolled 0/5 seeds.\\par") in tex
    index = (tmp_path / "r" / "index.md").read_text()
    assert "## Not stored yet" in index
    assert "- ring8, add-one (grid partial): spectral_norm 2/5 seeds, unrolled 0/5 seeds." in index
    assert "lr G 0.001 / D 0.0001, G loss minimax" in index


def test_report_grid_takes_the_grid_file_it_was_run_from(report, tmp_path, capsys):
    """`make run GRID=my.toml` reports with `--grid my.toml`: a file names the grid stored under
    its stem (as `status`/`show --grid` take files); a file whose grid is not stored, or no file,
    is one line."""
    root, _ = report
    (tmp_path / "g").mkdir()
    grid_file = tmp_path / "g" / "synth-tune.toml"
    grid_file.write_text("# the file `run` was given; only its name matters here\n")
    by_file, by_name = tmp_path / "by-file", tmp_path / "by-name"
    assert main(["report", "--store", str(root), "--out", str(by_file), "--no-samples",
                 "--grid", str(grid_file)]) == 0
    assert main(["report", "--store", str(root), "--out", str(by_name), "--no-samples",
                 "--grid", "synth-tune", "--no-pdf", "--workers", "1"]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in (by_file / "tables").iterdir())
    assert names and names == sorted(p.name for p in (by_name / "tables").iterdir())
    # the same figures, drawn in worker processes or in this one, with or without their PDFs
    pngs = sorted(p.name for p in (by_name / "figures").iterdir())
    assert pngs and all(n.endswith(".png") for n in pngs)
    assert sorted(p.name for p in (by_file / "figures").iterdir()) == sorted(
        pngs + [n[:-4] + ".pdf" for n in pngs])
    other = tmp_path / "g" / "mine.toml"
    other.write_text("")
    for bad, words in ((other, f"no grid 'mine' (from {other})"),
                       (tmp_path / "none.toml", "grid file not found")):
        assert main(["report", "--store", str(root), "--out", str(tmp_path / "o"), "--grid",
                     str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0]
    assert not (tmp_path / "o").exists()


def test_grids_whose_names_slug_alike_get_their_own_files(tmp_path):
    """`exp 1` / `exp_1`, names differing only in non-ASCII letters, or grid and dataset names
    that join alike (`g-fashion` + `mnist`, `g` + `fashion-mnist`) map to one portable slug;
    each table keeps its own file and the index links each once."""
    from bench.report.build import write_report
    from tests.synthetic_store import SEEDS, SyntheticStore

    s = SyntheticStore(tmp_path)
    grids = {"exp 1": "ring8", "exp_1": "ring8", "résumé": "ring8", "résumè": "ring8",
             "g-fashion": "mnist", "g": "fashion-mnist"}
    for i, (name, data) in enumerate(grids.items()):
        members = [s.member("add-one", data, s.add(data, (), seed, lr=1e-3 * (i + 1)),
                            "baseline") for seed in SEEDS[:2]]
        s.store.put_grid(name, {"description": name, "designs": {data: "add-one"}}, members)
    s.store.close()
    report = write_report(tmp_path, tmp_path / "r", samples=False)
    names = [t.name for t in report.tables]
    assert len(names) == len(set(names)) == len(grids)
    assert "exp_1-ring8-add-one" in names  # a name that needs no change keeps its plain stem
    assert len(list((tmp_path / "r" / "tables").glob("*.md"))) == len(grids)
    index = (tmp_path / "r" / "index.md").read_text()
    for t in report.tables:
        assert index.count(f"(tables/{t.name}.md)") == 1
        assert t.title in (tmp_path / "r" / "tables" / f"{t.name}.md").read_text()


def test_cells_stored_under_another_protocol_are_not_called_unstored(tmp_path):
    """`status` counts them as done; the report does not show them (not the prevailing
    protocol), and says so instead of "not stored yet"."""
    from bench.core.record import Record
    from bench.report.build import write_report
    from tests.synthetic_store import SEEDS, SyntheticStore, cell, metrics_2d

    s = SyntheticStore(tmp_path)
    members = [s.member("add-one", "ring8", s.add("ring8", (), seed), "baseline")
               for seed in SEEDS]
    for seed in SEEDS:
        sn = cell("ring8", ("spectral_norm",), seed)
        if seed < 2:
            s.add("ring8", ("spectral_norm",), seed)
        else:  # scored with fewer samples: another protocol, outvoted by the 7 cells above
            s.store.put(Record(cell_id=sn.cell_id, variant_id=sn.variant_id, label=sn.label,
                               config=sn.to_dict(), status="done", step=500,
                               metrics=metrics_2d(("spectral_norm",), seed),
                               protocol={"kind": "2d", "dataset": "ring8",
                                         "num_generated": 1000}))
        members.append(s.member("add-one", "ring8", sn, "variant"))
    s.store.put_grid("g", {"description": "g", "designs": {"ring8": "add-one"}}, members)
    report = write_report(s.store, tmp_path / "r", grid="g", samples=False)
    (table,) = report.tables
    assert table.notes[-1] == ("Not shown (3 cell(s); stored under another protocol or trick "
                               "version: 3): spectral_norm 2/5 seeds.")
    index = (tmp_path / "r" / "index.md").read_text()
    assert "## Not stored yet" not in index and "## Not shown" in index
    assert ("- ring8, add-one (grid g): spectral_norm 2/5 seeds (stored under another protocol "
            "or trick version: 3).") in index
    for seed in SEEDS:  # and a variant with no record at all
        members.append(s.member("add-one", "ring8", cell("ring8", ("unrolled",), seed),
                                "variant"))
    s.store.put_grid("g", {"description": "g", "designs": {"ring8": "add-one"}}, members)
    (table,) = write_report(s.store, tmp_path / "r", grid="g", samples=False).tables
    s.store.close()
    assert table.notes[-1] == (
        "Not shown (8 cell(s); not stored yet: 5, `ganbench status --grid g` lists them; stored "
        "under another protocol or trick version: 3): spectral_norm 2/5 seeds, unrolled 0/5 "
        "seeds.")
