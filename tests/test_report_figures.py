"""Every figure kind of the report, rendered on a synthetic store: PNGs at >= 200 dpi, no text
outside the canvas, no two titles (nor two tick labels of one axis) overlapping
(figures.layout_problems), a legend for the forest plot's colours and hollow markers, titled
sample sheets, and markers where a run has a single log point."""
import struct

import numpy as np
import pandas as pd
import pytest

from bench.report import figures
from bench.report.build import write_report
from tests.synthetic_store import build


def png_dpi(path) -> float:
    """The dpi a PNG's pHYs chunk records (matplotlib writes it from savefig's dpi)."""
    data = path.read_bytes()
    i = data.index(b"pHYs")
    x, _, unit = struct.unpack(">IIB", data[i + 4:i + 13])
    assert unit == 1  # pixels per metre
    return x * 0.0254


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("figs")
    s = build(root / "store")
    s.store.close()
    seen = {}
    hook = lambda fig, stem: seen.__setitem__(stem.name, figures.layout_problems(fig))  # noqa: E731
    figures.ON_SAVE.append(hook)
    try:
        rep = write_report(root / "store", root / "report")
    finally:
        figures.ON_SAVE.remove(hook)
    return rep, seen


def test_every_figure_kind_is_rendered_and_checked(report):
    rep, seen = report
    kinds = {p.stem.split("-")[0] for p, _ in rep.figures}
    assert {"summary", "forest", "interactions", "curves", "losses"} <= kinds
    assert rep.samples and len(seen) == len(rep.figures) + len(rep.samples)


def test_no_clipped_or_overlapping_text(report):
    _, seen = report
    assert {name: p for name, p in seen.items() if p} == {}


def test_pngs_are_at_least_200_dpi_with_a_pdf_beside_each(report):
    rep, _ = report
    for png, _ in rep.figures + rep.samples:
        assert png_dpi(png) >= 199.5, png
        pdf = png.with_suffix(".pdf")
        assert pdf.read_bytes()[:5] == b"%PDF-", pdf
    assert len(list(rep.out.rglob("*.pdf"))) == len(list(rep.out.rglob("*.png")))
    assert "(+ .pdf)" in (rep.out / "index.md").read_text()


def test_sample_sheets_are_titled_per_variant(report):
    rep, _ = report
    titles = [what for _, what in rep.samples]
    assert any(t.startswith("ring8 spectral_norm (grid synth), seeds 0, 1, 2, 3, 4") for t in titles)
    assert len(titles) == len(set(titles))
    assert len(rep.samples) < rep.df.drop_duplicates("cell_id").shape[0]  # not one per cell


def test_the_checker_finds_a_clipped_title_and_overlapping_titles():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(2, 1.5))
    fig.suptitle("a title far too long to fit on a figure two inches wide, so clipped")
    axes[0].set_title("a long panel title that runs into the next")
    axes[1].set_title("the next panel's title")
    problems = figures.layout_problems(fig)
    plt.close(fig)
    assert any("outside the canvas" in p for p in problems)
    assert any(p.startswith("titles") and "overlap" in p for p in problems)


def test_one_log_point_per_run_gets_a_marker(tmp_path):
    rows = pd.DataFrame({"cell_id": ["a", "b"], "row_label": ["baseline", "x"], "seed": [0, 0],
                         "curves": [{"d_adv": [[10, 1.0]], "g_adv": [[10, 2.0]]}] * 2})
    drawn = []
    figures.ON_SAVE.append(lambda fig, stem: drawn.extend(
        line.get_marker() for ax in fig.axes for line in ax.get_lines()))
    try:
        paths = figures.loss_curves(rows, tmp_path / "losses", "digits")
    finally:
        figures.ON_SAVE.pop()
    assert paths and drawn and all(m == "o" for m in drawn)


def test_pdf_by_default_and_png_only_on_request(tmp_path):
    numbers = pd.DataFrame({"variant": ["a", "b"], "d_modes": [1.0, -1.0], "d_modes_lo": [0.5, -2],
                            "d_modes_hi": [1.5, 0.1]})
    paths = figures.forest(numbers, ["modes"], tmp_path / "f", "t")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.exists() for p in paths)
    assert np.isfinite(png_dpi(paths[0]))
    figures.style.PDF = False  # write_report(pdf=False), `ganbench report --no-pdf`
    try:
        assert [p.suffix for p in figures.forest(numbers, ["modes"], tmp_path / "g", "t")] == [".png"]
    finally:
        figures.style.PDF = True


def test_a_sample_sheet_holds_its_pixels_unresampled(tmp_path):
    """The sheet is drawn pixel for pixel: a sample grid scaled by a whole factor shows up in
    the PNG exactly (nearest), its PDF beside it."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "samples.npz", images=images)
    paths, drawn = figures.sample_sheet([("seed 0", tmp_path / "samples.npz")], tmp_path / "s",
                                        "digits baseline")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and drawn == ["seed 0"]
    import matplotlib.image

    png = (matplotlib.image.imread(paths[0])[..., 0] * 255).round().astype(np.uint8)
    grid = figures.sample_pixels(tmp_path / "samples.npz")
    k = max(1, round(1.5 * figures.DPI / max(grid.shape)))
    big = grid.repeat(k, 0).repeat(k, 1)
    hits = [(y, x) for y in range(png.shape[0] - big.shape[0])
            for x in [png.shape[1] // 2 - big.shape[1] // 2 - 1,
                      png.shape[1] // 2 - big.shape[1] // 2]
            if (png[y:y + big.shape[0], x:x + big.shape[1]] == big).all()]
    assert hits


def test_save_lays_out_once_as_the_png_save_would(tmp_path, monkeypatch):
    """figures._save runs a constrained layout once, at the PNG's dpi, then saves without a
    layout engine: the PNG is byte-identical to matplotlib's own constrained save, and the PNG
    and the PDF cost one draw each (a figure with any layout engine, even "none", costs each
    save an extra draw first)."""
    import matplotlib.figure

    def draw():
        fig, axes = figures._subplots(1, 2, (3.2, 1.8))
        for i, ax in enumerate(axes[0]):
            ax.plot([0, 1, 2], [i, 2, 1])
            ax.set_title(f"panel {i}", fontsize=8)
            ax.set_ylabel("a y label", fontsize=7)
        figures._suptitle(fig, "a figure title long enough to be wrapped onto two lines", 8)
        return fig

    fig = draw()
    fig.savefig(tmp_path / "plain.png", dpi=figures.DPI)  # matplotlib's: layout in a pre-draw
    figures.plt.close(fig)
    calls = []
    real = matplotlib.figure.Figure.draw
    monkeypatch.setattr(matplotlib.figure.Figure, "draw",
                        lambda self, renderer: calls.append(1) or real(self, renderer))
    paths = figures._save(draw(), tmp_path / "saved")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert len(calls) == 2
    assert paths[0].read_bytes() == (tmp_path / "plain.png").read_bytes()
