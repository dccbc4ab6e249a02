"""Reference rows and degenerate-run flags in the report: chance and true-data rows in every 2-D
delta table (Markdown, LaTeX, CSV), the validity flags from stored curves, and no Δ between two
degenerate rows (bench/report/references.py, bench/report/validity.py)."""
import json
import math

import pandas as pd
import pytest

from bench.core.record import Record
from bench.report import references
from bench.report.build import write_report
from bench.report.validity import WITHHELD_TEXT
from bench.store import Store
from tests.synthetic_store import SyntheticStore, cell

LN2 = math.log(2)
PROTOCOL = {"kind": "2d", "dataset": "ring8", "num_generated": 2500, "seed": 0}
CHANCE = {"modes": [8.0] * 5, "high_quality": [0.040, 0.045, 0.035, 0.050, 0.030],
          "reverse_kl": [0.03, 0.02, 0.05, 0.04, 0.01]}
TRUE = {"modes": [8.0] * 5, "high_quality": [0.99] * 5, "reverse_kl": [0.001] * 5}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private reference cache holding hand-made rows for PROTOCOL."""
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    path = references.cache_path("ring8", PROTOCOL)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"dataset": "ring8", "version": 1, "seeds": [0, 1, 2, 3, 4],
                                "protocol": {k: v for k, v in PROTOCOL.items() if k != "seed"},
                                "rows": [{"name": "true_data", "role": "ceiling",
                                          "label": "true data", "metrics": TRUE},
                                         {"name": "uniform_ring_3s", "role": "chance",
                                          "label": "chance: uniform ring", "metrics": CHANCE}]}))
    return path


def put(store: Store, tricks, seed: int, *, d_level: float, hq: float, modes: float, kl: float):
    c = cell("ring8", tuple(tricks), seed)
    d_adv = [[100 * (i + 1), d_level + 0.001 * math.sin(i + seed)] for i in range(20)]
    store.put(Record(cell_id=c.cell_id, variant_id=c.variant_id, label=c.label,
                     config=c.to_dict(), status="done", step=2000,
                     metrics={"modes": modes, "high_quality": hq + 0.001 * seed, "reverse_kl": kl},
                     protocol=dict(PROTOCOL), curves={"d_adv": d_adv},
                     nets={"g_params": 1, "d_params": 1}))
    return c


def degenerate_store(root):
    """baseline and unrolled: D's loss flat at 2 ln 2, metrics below the chance row (the
    paper-2d pattern); spectral_norm learns (D's loss leaves chance, high quality 60%)."""
    s = SyntheticStore(root)
    members = []
    for seed in range(3):
        for tricks, role, level, hq, modes, kl in (
                ((), "baseline", 2 * LN2, 0.02, 5.0, 0.8),
                (("unrolled",), "variant", 2 * LN2, 0.03, 7.0, 0.4),
                (("spectral_norm",), "variant", 1.0, 0.60, 8.0, 0.1)):
            c = put(s.store, tricks, seed, d_level=level, hq=hq, modes=modes, kl=kl)
            members.append(s.member("add-one", "ring8", c, role))
    s.store.put_grid("deg", {"description": "degenerate", "designs": {"ring8": "add-one"}},
                     members)
    return s


def test_reference_rows_and_withheld_delta(tmp_path, cache):
    degenerate_store(tmp_path / "store")
    write_report(tmp_path / "store", tmp_path / "out", samples=False)
    md = (tmp_path / "out" / "tables" / "deg-ring8-add-one.md").read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()
            if line.startswith("| ")}
    # reference rows, labelled, with mean ± sd (n seeds) and no Δ
    assert "reference (chance)" in rows["chance: uniform ring"]
    assert "0.04 ± 0.00791 (5)" in rows["chance: uniform ring"]
    assert "reference (ceiling)" in rows["true data"] and "0.99 ± 0 (5)" in rows["true data"]
    # both degenerate: the Δ is withheld; the learning variant keeps its Δ
    assert rows["unrolled"].count(WITHHELD_TEXT) == 3
    assert "d_at_chance×3" in rows["unrolled"] and "at_chance×3" in rows["unrolled"]
    assert WITHHELD_TEXT not in rows["spectral_norm"] and "+0.58" in rows["spectral_norm"]
    assert "at_chance" not in rows["spectral_norm"]
    assert "left out of the Holm adjustment" in md and "Reference rows" in md
    csv = pd.read_csv(tmp_path / "out" / "tables" / "deg-ring8-add-one.csv")
    unrolled = csv[csv["variant"] == "unrolled"].iloc[0]
    assert bool(unrolled["delta_withheld"]) and math.isnan(unrolled["d_high_quality"])
    assert math.isnan(unrolled["d_high_quality_p_holm"])
    ref = csv[csv["role"] == "reference:chance"].iloc[0]
    assert ref["high_quality_mean"] == pytest.approx(0.04)
    tex = (tmp_path / "out" / "tables" / "deg-ring8-add-one.tex").read_text()
    assert "chance: uniform ring & reference (chance)" in tex and "degenerate" in tex


def test_flags_carry_step_and_evidence(tmp_path, cache):
    from bench.store.results import load_records
    from bench.report.validity import add_flags
    from bench.store.results import headline_metrics

    degenerate_store(tmp_path / "store")
    df = load_records(tmp_path / "store", memberships=True)
    df = add_flags(df, references.for_records(df), headline_metrics)
    base = df[(df["label"] == "baseline") & (df["seed"] == 0)].iloc[0]
    details = {f["flag"]: f for f in base["flag_details"]}
    assert details["d_at_chance"]["step"] == 100 and "20/20 log points" in details["d_at_chance"]["detail"]
    assert details["at_chance"]["step"] == 2000 and "chance: uniform ring" in details["at_chance"]["detail"]


def test_missing_references_say_why(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    refs = references.references_for("digits", {"kind": "image", "metrics": ["fid"]})
    assert not refs.rows and "not cached" in refs.note()
    assert "no metric protocol" in references.references_for("ring8", {}).note()


def test_references_scored_in_a_child_process(tmp_path, monkeypatch):
    """A cache miss on 2-D data runs `python -m bench.metrics.references` (torch stays out of
    the report's process) and gives the rows that scoring in process gives."""
    from bench.data import load_dataset
    from bench.metrics.protocol import EvalSpec
    from bench.metrics.references import score_references

    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    refs = references.references_for("ring8", PROTOCOL)
    assert refs.path and references.cache_path("ring8", PROTOCOL).exists()
    want = score_references(load_dataset("ring8"), EvalSpec(metrics=("modes",)))
    assert [r["metrics"] for r in refs.rows] == [r["metrics"] for r in want["rows"]]
    assert [r["role"] for r in refs.rows] == ["chance"] * 4 + ["ceiling"]
    # the records' protocol lacks keys the current code writes: the note names them
    assert "num_modes" in refs.differs and "differs from the records'" in refs.note()


def test_degenerate_is_a_majority_of_scored_seeds():
    from bench.report.validity import MARK, degenerate, mark, withheld

    def rows(flags, statuses=None):
        statuses = statuses or ["done"] * len(flags)
        return pd.DataFrame({"seed": range(len(flags)), "status": statuses, "run_flags": flags})

    two_of_three = rows([("d_at_chance",), ("at_chance", "mode_drop"), ()])
    one_of_three = rows([("d_at_chance",), ("mode_drop",), ()])
    assert degenerate(two_of_three) and not degenerate(one_of_three)
    # seeds that did not finish do not count either way
    assert degenerate(rows([("at_chance",), (), ()], ["done", "diverged", "failed"]))
    assert withheld(two_of_three, two_of_three) and not withheld(two_of_three, one_of_three)
    assert not withheld(two_of_three, None)
    assert mark("unrolled", two_of_three) == "unrolled" + MARK
    assert mark("unrolled", one_of_three) == "unrolled"
    from bench.report.validity import runs_note
    assert runs_note(one_of_three)[0].startswith("1 of 3 scored runs are degenerate")
    assert runs_note(rows([(), ("mode_drop",)])) == []


def test_curve_lines_are_the_rows_mean_and_sd():
    refs = references.References("ring8", rows=[
        {"name": "u", "role": "chance", "label": "chance: u", "metrics": {"high_quality": CHANCE["high_quality"]}},
        {"name": "t", "role": "ceiling", "label": "true data", "metrics": {"modes": TRUE["modes"]}}],
        seeds=[0, 1, 2, 3, 4])
    lines = references.curve_lines(refs)
    (label, role, mean, sd), = lines["high_quality"]
    assert (label, role) == ("chance: u", "chance") and mean == pytest.approx(0.04)
    assert sd == pytest.approx(pd.Series(CHANCE["high_quality"]).std())
    assert lines["modes"] == [("true data", "ceiling", 8.0, 0.0)]
    assert references.curve_lines(None) == {}
