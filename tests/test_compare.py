"""`ganbench compare`: baseline + named tricks with paired seeds, reused when stored."""
import pytest

from bench.cli import main
from bench.store import Store
from bench.store.results import load_records

TINY = """description = "tiny compare grid"
seeds = [0, 1]

[[data]]
name = "ring8"
steps = 12
batch_size = 32
lr = 1e-3
"""


@pytest.fixture
def grid(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def test_compare_trains_pairs_prints_and_reuses(grid, tmp_path, capsys):
    store = tmp_path / "s"
    args = ["compare", "--trick", "label_flip,self_attention", "--grid", str(grid), "--store",
            str(store), "--workers", "1", "--seeds", "3", "--curve-every", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Δ modes [95% CI]" in out and "label_flip" in out and "not-applicable" in out
    with Store(store) as s:
        records = list(s.records())
        members = s.members("compare:label_flip+self_attention@tiny")
    # 3 seeds x (baseline, label_flip, self_attention); every variant has seeds 0, 1, 2
    assert len(records) == 9 and len(members) == 9
    df = load_records(store, grid="compare:label_flip+self_attention@tiny", memberships=True)
    assert sorted(df.groupby("label").seed.apply(sorted).tolist()) == [[0, 1, 2]] * 3
    assert set(df[df.label == "baseline"].role) == {"baseline"}
    assert (tmp_path / "s" / "compare-label_flip+self_attention" / "index.md").exists()
    # a second compare reuses every stored cell: nothing is trained again
    before = {r.cell_id: r.created_at for r in records}
    assert main(args) == 0
    with Store(store) as s:
        assert {r.cell_id: r.created_at for r in s.records()} == before


def test_compare_bad_input_is_one_line_and_writes_nothing(grid, tmp_path, capsys):
    store = tmp_path / "s"
    for bad, words in ((["--trick", "spectral_nrom"], "did you mean"),
                       (["--trick", "label_flip", "--seeds", "0"], "--seeds"),
                       (["--trick", "label_flip,label_flip"], "twice")):
        assert main(["compare", *bad, "--grid", str(grid), "--store", str(store)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ganbench: error:") and words in err[0]
    assert not store.exists()


def test_compare_keeps_a_tuned_grids_lrs_apart(tmp_path, capsys):
    grid = tmp_path / "tuned.toml"
    grid.write_text(TINY.replace('seeds = [0, 1]', 'seeds = [0]\n\n[tune]\nlr = [1e-3, 5e-4]')
                    .replace("lr = 1e-3\n", ""))
    store = tmp_path / "s"
    assert main(["compare", "--trick", "label_flip", "--grid", str(grid), "--store", str(store),
                 "--workers", "1", "--curve-every", "0"]) == 0
    df = load_records(store, grid="compare:label_flip@tuned", memberships=True)
    assert sorted(df.tune_lr) == [5e-4, 5e-4, 1e-3, 1e-3]
    assert len(set(df.row_label)) == 4  # e.g. "label_flip [lr=0.0005]"
    # the grid name's ':' and '@' are replaced, so the stem carries a hash of the name
    (tuned,) = (store / "compare-label_flip" / "tables").glob(
        "compare_label_flip_tuned_*-ring8-add-one-tuned.md")
    assert "each variant at its best LR" in tuned.read_text()


def test_compare_header_names_the_resolved_worker_count(grid, tmp_path, capsys, monkeypatch):
    """Called without --workers and without `main` resolving it, the header names the default
    (it printed "(None worker(s))") and run_cells gets that number."""
    import bench.schedule.executor
    from bench.cli import cmd_compare, make_parser

    got = {}

    def run_cells(cells, root, *, workers, **kw):
        got["workers"] = workers
        return iter(())
    monkeypatch.setattr(bench.schedule.executor, "default_workers", lambda: 3)
    monkeypatch.setattr(bench.schedule.executor, "run_cells", run_cells)
    monkeypatch.setattr(cmd_compare, "print_comparison", lambda *a, **k: None)
    args = make_parser().parse_args(["compare", "--trick", "label_flip", "--grid", str(grid),
                                     "--store", str(tmp_path / "s")])
    assert args.workers is None and cmd_compare.run(args) == 0
    assert "(3 worker(s))" in capsys.readouterr().out and got["workers"] == 3


def test_compare_exits_1_when_a_cell_failed_and_retry_reruns_it(grid, tmp_path, capsys,
                                                              monkeypatch):
    """As `run`: failed cells make exit code 1 with a hint; `--retry failed` trains them again
    (the failed record is kept in the new one's history)."""
    from bench.train import Trainer

    def boom(self, **kw):
        raise RuntimeError("synthetic failure")

    store = tmp_path / "s"
    args = ["compare", "--trick", "label_flip", "--grid", str(grid), "--store", str(store),
            "--workers", "1", "--seeds", "1", "--curve-every", "0"]
    with monkeypatch.context() as m:
        m.setattr(Trainer, "train", boom)
        assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ganbench: 2 cell(s) failed") and "--retry failed" in err[-1]
    assert main(args) == 1  # stored failures are reused as stored, and still reported
    capsys.readouterr()
    assert main(args + ["--retry", "failed"]) == 0
    assert "retrying failed" in capsys.readouterr().out
    with Store(store) as s:
        records = list(s.records())
    assert [r.status for r in records] == ["done", "done"]
    assert all([e["event"] for e in r.history] == ["retry"] for r in records)
