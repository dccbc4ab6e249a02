"""`ganbench status`: counts by dataset x design x status, live leases, failed cells with their
reason, the slowest cells and what a grid still lacks, from a store built by hand."""
import json

from bench.cli import main
from bench.core.record import Record
from bench.schedule.grid import load_grid
from bench.schedule.leases import Leases, my_owner
from bench.store import Store

GRID = """
design = ["add-one", "pairs"]
tricks = ["label_smoothing", "spectral_norm"]
[[data]]
name = "ring8"
steps = 5
batch_size = 16
"""


def test_status_shows_counts_leases_failures_slowest_and_what_a_grid_lacks(tmp_path, capsys):
    path = tmp_path / "g.toml"
    path.write_text(GRID)
    grid = load_grid(str(path))
    cells = {c.label: c for c in grid.cells}
    assert sorted(cells) == ["baseline", "label_smoothing", "label_smoothing+spectral_norm",
                             "spectral_norm"]
    store_root = tmp_path / "s"
    with Store(store_root) as store:
        store.put_grid(grid.name, grid.spec, list(grid.members))
        for label, status, train_s in (("baseline", "done", 3.0),
                                       ("label_smoothing", "failed", 1.0),
                                       ("spectral_norm", "done", 9.0)):
            c = cells[label]
            store.put(Record(cell_id=c.cell_id, variant_id=c.variant_id, label=label,
                             config=c.to_dict(), status=status,
                             reason="RuntimeError: boom" if status == "failed" else "",
                             timings={"train_s": train_s, "eval_s": 0.5, "ms_per_step": 1.0}))
        with Leases(store.db_path) as leases:  # someone trains the pair right now
            pair = cells["label_smoothing+spectral_norm"].cell_id
            assert leases.acquire(pair, my_owner())[0] == "taken"
    assert main(["status", "--store", str(store_root), "--grid", grid.name, "--json",
                 "--slowest", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    rows = {(r["design"], r["status"]): r["cells"] for r in info["by_dataset_design"]}
    # the baseline belongs to both designs; the pair is missing from 'pairs' only
    assert rows == {("add-one", "done"): 2, ("add-one", "failed"): 1,
                    ("pairs", "done"): 1, ("pairs", "missing"): 1}
    assert [lease["cell_id"] for lease in info["live_leases"]] == [pair]
    assert info["failed"][0]["reason"] == "RuntimeError: boom"
    assert [s["label"] for s in info["slowest"]] == ["spectral_norm"]
    assert [m["cell_id"] for m in info["missing"]] == [pair]
    assert main(["status", "--store", str(store_root), "--grid", str(path)]) == 0
    text = capsys.readouterr().out
    assert "being trained now (live leases):" in text and "lacks 1 cell(s):" in text
    assert "RuntimeError: boom" in text
    with Store(store_root) as store:  # a cell trained alone (`train`) belongs to no grid
        c = cells["baseline"].replace(seed=7)
        store.put(Record(cell_id=c.cell_id, variant_id=c.variant_id, label="baseline",
                         config=c.to_dict(), status="done"))
    assert main(["status", "--store", str(store_root), "--json"]) == 0
    rows = {(r["design"], r["status"]): r["cells"]
            for r in json.loads(capsys.readouterr().out)["by_dataset_design"]}
    assert rows[("(no grid)", "done")] == 1


def test_show_grid_lists_only_that_grids_cells_in_grid_order(tmp_path, capsys):
    from bench.cli import main
    from tests.synthetic_store import build

    synth = build(tmp_path)
    # a grid whose order is the reverse of the order its records were stored in
    members = synth.store.members("synth-tune")[::-1]
    synth.store.put_grid("synth-tune", synth.store.grids()["synth-tune"], members)
    created = [r.cell_id for r in synth.store.records()]
    synth.store.close()
    wanted = list(dict.fromkeys(m["cell_id"] for m in members))
    assert [c for c in created if c in wanted] != wanted
    assert main(["show", "--store", str(tmp_path), "--grid", "synth-tune"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{len(wanted)} record(s)")
    shown = [line.split()[0] for line in lines[2:]]
    assert shown == wanted  # grid order, not the order the records were stored in
    assert main(["show", "--store", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.splitlines()) > len(lines)  # other grids' cells too
