"""The check the tests run on every figure kind: texts outside the canvas, overlapping titles,
one axis' tick labels running into each other (`layout_problems`)."""
from __future__ import annotations

from matplotlib.text import Text


def _drawn_texts(fig) -> list[tuple[str, Text]]:
    """(kind, artist) of every text a draw shows: the figure's, each axes' titles, axis labels,
    tick labels in view, annotations and legend texts."""
    out: list[tuple[str, Text]] = []
    if fig._suptitle is not None:
        out.append(("title", fig._suptitle))
    out += [("title", t) for t in fig.texts if t is not fig._suptitle]  # a sample sheet's panels'
    for leg in fig.legends:
        out += [("legend", t) for t in leg.get_texts()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for t in (ax.title, ax._left_title, ax._right_title):
            out.append(("title", t))
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                out.append(("label", axis.label))
                for tick in axis._update_ticks():
                    out += [("tick", t) for t in (tick.label1, tick.label2)]
        out += [("text", t) for t in ax.texts]
        if ax.get_legend() is not None:
            out += [("legend", t) for t in ax.get_legend().get_texts()]
    return [(k, t) for k, t in out if t.get_visible() and t.get_text().strip()]


def layout_problems(fig, tolerance: float = 1.0) -> list[str]:
    """What a reader would see wrong, after a draw: a text outside the canvas (clipped), or two
    titles (the figure's, the panels') overlapping each other. [] when none."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    problems = []
    titles = []
    for kind, t in _drawn_texts(fig):
        box = t.get_window_extent(renderer)
        if (box.x0 < canvas.x0 - tolerance or box.y0 < canvas.y0 - tolerance
                or box.x1 > canvas.x1 + tolerance or box.y1 > canvas.y1 + tolerance):
            problems.append(f"{kind} {t.get_text()!r} lies outside the canvas "
                            f"({box.x0:.0f}..{box.x1:.0f} x {box.y0:.0f}..{box.y1:.0f} in "
                            f"{canvas.width:.0f} x {canvas.height:.0f})")
        if kind == "title":
            titles.append((t, box))
    for i, (t1, b1) in enumerate(titles):
        for t2, b2 in titles[i + 1:]:
            if b1.overlaps(b2):
                problems.append(f"titles {t1.get_text()!r} and {t2.get_text()!r} overlap")
    for ax in fig.axes:  # one axis' tick labels run into each other (unreadable)
        if not ax.get_visible() or not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [(t.get_text(), t.get_window_extent(renderer))
                     for tick in axis._update_ticks() for t in (tick.label1,)
                     if t.get_visible() and t.get_text().strip()]
            for i, (n1, b1) in enumerate(boxes):
                for n2, b2 in boxes[i + 1:]:
                    if b1.overlaps(b2):
                        problems.append(f"tick labels {n1!r} and {n2!r} overlap")
    return problems
