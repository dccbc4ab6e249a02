"""The forest and summary figures mark as significant only what the tables claim: with a grid's
pre-registered primary metric for a dataset (`primary` in its [[data]] table), only that metric's
significant rows get a filled, coloured marker (forest) or a * (summary); the other headline
metrics are secondary, drawn grey and hollow without a *, and the figure says so. A dataset
without a primary keeps every headline metric a claim. Checked on the markers' face colours and
the annotations drawn, per metric."""
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from bench.core.record import Record
from bench.report import figures
from bench.report.build import write_report
from tests.synthetic_store import SyntheticStore, cell

SEEDS = range(6)
# every seed moves both metrics the same way: sign-flip p = 2 / 2^6 < 0.05 on each
EFFECT = {"spectral_norm": (-0.5, 1.0), "label_flip": (0.0, 0.0)}  # (reverse_kl, modes)
WHITE = mcolors.to_rgba("white")


def _store(root):
    """ring8 pre-registers reverse_kl; grid25 sets no primary (every headline a claim)."""
    s = SyntheticStore(root)
    members = []
    for data in ("ring8", "grid25"):
        for name in ("baseline", *EFFECT):
            tricks = () if name == "baseline" else (name,)
            drkl, dmodes = EFFECT.get(name, (0.0, 0.0))
            for seed in SEEDS:
                c = cell(data, tricks, seed)
                wobble = 0.01 * ((seed * 7 + len(name)) % 5)  # spread, no sign change
                s.store.put(Record(
                    cell_id=c.cell_id, variant_id=c.variant_id, label=c.label,
                    config=c.to_dict(), status="done", step=500, flags=[],
                    metrics={"reverse_kl": 1.0 + 0.1 * seed + drkl + wobble,
                             "modes": 5.0 + seed % 3 + dmodes + wobble, "high_quality": 0.3},
                    curves={}, protocol={"kind": "2d", "dataset": data, "num_generated": 2500,
                                         "num_modes": 8 if data == "ring8" else 25}))
                members.append(s.member("add-one", data, c, "variant" if tricks else "baseline"))
    s.store.put_grid("g", {"description": "claims", "primary": {"ring8": "reverse_kl"},
                           "designs": {"ring8": "add-one", "grid25": "add-one"}}, members)
    s.store.close()


def _forest_markers(fig) -> dict[str, dict[str, bool]]:
    """{panel metric: {variant: marker filled}} of a forest figure."""
    out = {}
    names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    for ax in fig.axes:
        dots = [c for c in ax.collections if c.get_offsets().shape[0]
                and type(c).__name__ == "PathCollection"]
        assert len(dots) == 1
        ys = dots[0].get_offsets()[:, 1]
        faces = dots[0].get_facecolors()
        filled = {names[len(names) - 1 - int(round(y))]: not np.allclose(f, WHITE)
                  for y, f in zip(ys, faces)}
        out[ax.get_title().split(" ")[0]] = filled
    return out


def _summary_stars(fig) -> dict[str, dict[str, set[str]]]:
    """{panel title: {column label: annotations}} of the summary figure."""
    out = {}
    for ax in fig.axes:
        if not ax.get_xticklabels():
            continue
        cols = [t.get_text() for t in ax.get_xticklabels()]
        per = {c: set() for c in cols}
        for t in ax.texts:
            per[cols[int(t.get_position()[0])]].add(t.get_text())
        out[ax.get_title().replace("\n", " ")] = per
    return out


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    root = tmp_path_factory.mktemp("claims")
    _store(root / "store")
    seen = {}

    def hook(fig, stem):
        if stem.name.startswith("forest-"):
            seen[stem.name] = (_forest_markers(fig), [t.get_text() for leg in fig.legends
                                                      for t in leg.get_texts()],
                               figures.layout_problems(fig))
        elif stem.name == "summary":
            seen[stem.name] = (_summary_stars(fig), fig._suptitle.get_text(),
                               figures.layout_problems(fig))
    figures.ON_SAVE.append(hook)
    try:
        write_report(root / "store", root / "report", samples=False, pdf=False, workers=1)
    finally:
        figures.ON_SAVE.remove(hook)
    return seen


def _one(seen, dataset):
    (name,) = [n for n in seen if n.startswith("forest-") and dataset in n]
    return seen[name]


def test_forest_fills_only_the_primary_metrics_significant_rows(drawn):
    markers, legend, problems = _one(drawn, "ring8")
    assert problems == []
    assert set(markers) >= {"reverse_kl", "modes"}  # and high_quality (constant: Δ 0)
    assert not any(markers["high_quality"].values())
    # spectral_norm is significant on both; only the primary's marker is a finding
    assert markers["reverse_kl"]["spectral_norm"] is True
    assert markers["reverse_kl"]["label_flip"] is False
    assert not any(markers["modes"].values())
    assert any("secondary" in t and "not tested" in t for t in legend)


def test_forest_without_a_primary_keeps_every_metric_a_claim(drawn):
    markers, legend, problems = _one(drawn, "grid25")
    assert problems == []
    assert markers["reverse_kl"]["spectral_norm"] and markers["modes"]["spectral_norm"]
    assert not markers["reverse_kl"]["label_flip"] and not markers["modes"]["label_flip"]
    assert not any("secondary" in t for t in legend)


def test_summary_stars_only_the_primary_column(drawn):
    panels, title, problems = drawn["summary"]
    assert problems == []
    ring8 = next(v for k, v in panels.items() if k.startswith("ring8"))
    grid25 = next(v for k, v in panels.items() if k.startswith("grid25"))
    assert any(t.endswith("*") for t in ring8["reverse_kl"])
    assert set(ring8) >= {"reverse_kl", "modes (sec.)"}
    assert ring8["modes (sec.)"] and not any(t.endswith("*") for t in ring8["modes (sec.)"])
    assert any(t.endswith("*") for t in grid25["modes"])  # no primary: a claim
    assert "secondary" in title


def test_forest_unit_primary_absent_from_the_table_means_every_metric_a_claim(tmp_path):
    """A primary the table holds no Δ for (not scored here): the tables test every headline
    metric then, and so does the figure."""
    numbers = pd.DataFrame({"variant": ["a", "b"], "d_modes": [1.0, -1.0],
                            "d_modes_lo": [0.5, -2.0], "d_modes_hi": [1.5, -0.5]})
    faces = []
    figures.ON_SAVE.append(lambda fig, stem: faces.extend(
        fig.axes[0].collections[-1].get_facecolors().tolist()))
    try:
        figures.forest(numbers, ["modes"], tmp_path / "f", "t", primary="fid")
        figures.forest(numbers, ["modes"], tmp_path / "g", "t",
                       primary="modes")  # the primary itself: filled
    finally:
        figures.ON_SAVE.pop()
    assert not any(np.allclose(f, WHITE) for f in faces)
