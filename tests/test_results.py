"""bench.store.results.load_records: one row per record and membership, versions and protocols."""
import json

import pytest

from bench.core.record import Record
from bench.core.trick_versions import installed_trick_versions, versions_in_source
from bench.store import Store, StoreError
from bench.store.results import load_records, protocol_hash
from tests.synthetic_store import build, cell, metrics_2d


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    s = build(root)
    s.store.close()
    return root


def test_one_row_per_cell_by_default(synth):
    """The README's groupby counts each cell once, however many grids and designs ask for it."""
    df = load_records(synth)
    assert df.cell_id.is_unique
    assert len(df) == load_records(synth, memberships=True).cell_id.nunique()
    base = df[df.cell_id == cell("ring8", (), 0).cell_id].iloc[0]
    assert base.grids == ("synth", "synth-tune")
    assert set(base.designs) == {"add-one", "factorial", "leave-one-out", "pairs"}
    assert "grid" not in df.columns and "design" not in df.columns
    counts = df[df.dataset == "ring8"].groupby("label")["modes"].agg(["count"])
    assert counts.loc["baseline", "count"] == df[(df.dataset == "ring8")
                                                 & (df.label == "baseline")].cell_id.nunique()
    assert "run_flags" in df.columns and "flags" not in df.columns  # not DataFrame.flags


def test_ganbench_exports_the_results_api(synth):
    import ganbench

    assert ganbench.load_records is load_records
    assert len(ganbench.load_records(synth)) == len(load_records(synth))


def test_one_row_per_membership_with_design_info(synth):
    df = load_records(synth, memberships=True)
    base = cell("ring8", (), 0)
    rows = df[df.cell_id == base.cell_id]
    # the baseline of seed 0 is in every design of "synth" and in the tune grid
    assert sorted(rows.design) == ["add-one", "add-one", "factorial", "leave-one-out", "pairs"]
    assert set(rows.role) == {"baseline"}
    fact = df[(df.design == "factorial") & (df.label == "label_flip+spectral_norm")]
    assert fact.factors.iloc[0] == {"instance_noise": 0, "label_flip": 1, "spectral_norm": 1}
    tuned = df[(df.grid == "synth-tune") & (df.tune_lr == 5e-4)]
    assert len(tuned) == 6 and tuned.row_label.str.contains("lr=0.0005").all()
    sn = df[(df.label == "spectral_norm") & (df.seed == 3) & (df.design == "add-one")
            & (df.grid == "synth")].iloc[0]
    assert sn.high_quality == pytest.approx(metrics_2d(("spectral_norm",), 3)["high_quality"])
    assert sn.g_params == 1010 and sn.d_params == 2000 and sn.g_lr == 1e-3
    assert sn.trick_versions == {"spectral_norm": 1}
    assert {"modes", "high_quality", "reverse_kl", "fid"} <= set(df.attrs["metrics"])
    ttur = df[(df.label == "ttur") & (df.seed == 0)].iloc[0]
    assert ttur.d_lr == pytest.approx(4e-3)  # the effective LR, not the config's
    drop = df[(df.label == "dropout") & (df.seed == 0)].iloc[0]
    assert drop["run_flags"] == ("d_loss_collapse",)
    assert df[(df.label == "ttur") & (df.seed == 2)].status.iloc[0] == "failed"


def test_grid_filter_and_unknown_grid(synth):
    df = load_records(synth, grid="synth-tune", memberships=True)
    assert set(df.grid) == {"synth-tune"} and len(df) == 12
    with pytest.raises(StoreError, match="no grid 'nope'"):
        load_records(synth, grid="nope")


def _put(store, c, version_note=None, protocol=None, metrics=None):
    store.put(Record(cell_id=c.cell_id, variant_id=c.variant_id, label=c.label,
                     config=c.to_dict(), status="done", metrics=metrics or {"modes": 8.0},
                     protocol=protocol or {"kind": "2d", "n": 2500}))


def test_current_versions_and_protocols(tmp_path):
    from bench.core.config import TrickSpec

    with Store(tmp_path) as store:
        # a trick whose source is not installed: its newest stored version counts as current
        old = cell("ring8", (), 0).replace(tricks=(TrickSpec.of("ext_trick", {}, 1),))
        new = cell("ring8", (), 0).replace(tricks=(TrickSpec.of("ext_trick", {"weight": 3.0}, 2),))
        installed_pl = installed_trick_versions()["path_length"]
        stale = cell("ring8", (), 3).replace(
            tricks=(TrickSpec.of("path_length", {}, installed_pl - 1),))
        _put(store, stale)
        _put(store, old)
        _put(store, new)
        # same dataset, a different metric protocol on one record only: not comparable
        _put(store, cell("ring8", (), 1))
        _put(store, cell("ring8", (), 2), protocol={"kind": "2d", "n": 100})
    df = load_records(tmp_path)
    assert list(df[df.label == "ext_trick"].trick_versions) == [{"ext_trick": 2}]
    assert list(df[df.label == "ext_trick"]["ext_trick.weight"]) == [3.0]
    assert "path_length" not in set(df.label)  # an older version than the installed source
    assert 2 not in set(df.seed)  # the odd protocol is dropped by default
    everything = load_records(tmp_path, current_versions=False)
    assert len(everything) == 5 and everything.current.sum() == 2
    # versions may be passed in (e.g. by a caller that has the registry loaded)
    pinned = load_records(tmp_path, trick_versions={"ext_trick": 1})
    assert list(pinned[pinned.label == "ext_trick"].trick_versions) == [{"ext_trick": 1}]


def test_versions_read_from_source_without_import():
    src = ("class A(Trick):\n    name = 'a'\n    version = 3\n"
           "class B(Trick):\n    name = 'b'\n")
    assert versions_in_source(src) == {"a": 3, "b": 1}


def test_protocol_hash_ignores_rescoring_history():
    p = {"kind": "2d", "n": 1}
    assert protocol_hash(p) == protocol_hash({**p, "previous": [{"metrics": {}}]}) != ""
    assert protocol_hash({}) == ""


def test_records_without_membership_count_as_add_one(tmp_path):
    with Store(tmp_path) as store:
        _put(store, cell("ring8", (), 0))
        _put(store, cell("ring8", ("spectral_norm",), 0))
    df = load_records(tmp_path, memberships=True)
    assert set(df.design) == {"add-one"} and set(df.grid) == {""}
    assert set(load_records(tmp_path).grids) == {()}
    assert dict(zip(df.label, df.role)) == {"baseline": "baseline", "spectral_norm": "variant"}


def test_missing_store_is_an_error(tmp_path):
    with pytest.raises(StoreError, match="no store"):
        load_records(tmp_path / "nothing")


def test_each_resolution_has_its_own_prevailing_protocol(tmp_path):
    from bench.core.config import DataConfig

    with Store(tmp_path) as store:
        for seed in (0, 1):
            _put(store, cell("digits", (), seed), protocol={"kind": "image", "n": 2000})
            _put(store, cell("digits", (), seed).replace(data=DataConfig("digits", 8)),
                 protocol={"kind": "image", "n": 500})
    df = load_records(tmp_path)
    assert sorted(df.data) == ["digits", "digits", "digits@8px", "digits@8px"]


def test_empty_store_gives_an_empty_frame(tmp_path):
    Store(tmp_path).close()
    df = load_records(tmp_path)
    assert df.empty and {"cell_id", "data", "status"} <= set(df.columns)


def test_several_grids_at_once_leave_out_cells_no_grid_asks_for(tmp_path, capsys):
    """`report --grid A --grid B`: a store also holds records no grid asks for any more (a grid
    file changed); naming the grids keeps them out of the tables."""
    from tests.synthetic_store import SyntheticStore

    s = SyntheticStore(tmp_path)
    a, b = s.add("ring8", (), 0), s.add("ring8", ("spectral_norm",), 0)
    orphan = s.add("ring8", ("dropout",), 0)
    s.store.put_grid("A", {"description": "a"}, [s.member("add-one", "ring8", a, "baseline")])
    s.store.put_grid("B", {"description": "b"}, [s.member("add-one", "ring8", b, "variant")])
    s.store.close()
    everything = load_records(tmp_path)
    assert orphan.cell_id in set(everything.cell_id)
    both = load_records(tmp_path, grid=["A", "B"], memberships=True)
    assert set(both.cell_id) == {a.cell_id, b.cell_id} and set(both.grid) == {"A", "B"}
    assert set(load_records(tmp_path, grid="A").cell_id) == {a.cell_id}
    with pytest.raises(StoreError, match="no grid 'C'"):
        load_records(tmp_path, grid=["A", "C"])
    from bench.cli import main

    assert main(["report", "--store", str(tmp_path), "--grid", "A", "--grid", "B", "--out",
                 str(tmp_path / "r")]) == 0
    index = (tmp_path / "r" / "index.md").read_text()  # sample titles say whose setup it is
    assert "ring8 baseline (grid A), seeds 0" in index and "spectral_norm (grid B), seeds 0" in index
    tables = " ".join(p.read_text() for p in (tmp_path / "r" / "tables").glob("*.md"))
    assert "spectral_norm" in tables and "dropout" not in tables
