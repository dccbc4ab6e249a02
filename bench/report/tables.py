"""A rendered table (cells of text, some bold) and its three outputs: Markdown, a LaTeX booktabs
fragment, and CSV (the numbers, unformatted, from the view that built it)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ARROWS = {"up": "↑", "down": "↓"}


@dataclass(frozen=True)
class Cell:
    text: str
    bold: bool = False


@dataclass
class Table:
    name: str  # file stem
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    numbers: pd.DataFrame  # what the CSV holds
    notes: list[str] = field(default_factory=list)

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"{self.name}.md", folder / f"{self.name}.tex", folder / f"{self.name}.csv"]
        paths[0].write_text(to_markdown(self))
        paths[1].write_text(to_latex(self))
        self.numbers.to_csv(paths[2], index=False)
        return paths


def num(x, signed: bool = False) -> str:
    """Three significant digits, no exponent for ordinary magnitudes; '–' for a missing value."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    x = float(x)
    if abs(x) < 1e-12:  # least-squares round-off (e.g. 3e-16) is zero
        x = 0.0
    if abs(x) >= 1000:
        text = f"{x:+,.0f}" if signed else f"{x:,.0f}"
    elif x == int(x) and abs(x) >= 1:
        text = f"{x:+.0f}" if signed else f"{x:.0f}"
    else:
        text = f"{x:+.3g}" if signed else f"{x:.3g}"
    return text


def count(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{int(x):,}"


def _md_cell(c: Cell) -> str:
    text = c.text.replace("|", "\\|")
    return f"**{text}**" if c.bold and text not in ("", "–") else text


def to_markdown(t: Table) -> str:
    lines = [f"### {t.title}", ""]
    lines.append("| " + " | ".join(c.replace("|", "\\|") for c in t.columns) + " |")
    lines.append("|" + "|".join("---" for _ in t.columns) + "|")
    for row in t.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    if t.notes:
        lines.append("")
        lines.extend(t.notes)
    return "\n".join(lines) + "\n"


_TEX = [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
        ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"),
        ("^", r"\textasciicircum{}")]
_TEX_SYMBOLS = {"±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "Δ": r"$\Delta$",
                "–": "--", "−": "-", "×": r"$\times$", "†": r"$^\dagger$", "≥": r"$\geq$",
                "σ": r"$\sigma$", "‡": r"$^\ddagger$", "τ": r"$\tau$",
                "≤": r"$\leq$", "α": r"$\alpha$", "→": r"$\rightarrow$"}


def tex_escape(text: str) -> str:
    for a, b in _TEX:
        text = text.replace(a, b) if a != "\\" else text.replace(a, "\0")
    text = text.replace("\0", r"\textbackslash{}")
    return "".join(_TEX_SYMBOLS.get(ch, ch) for ch in text)


def _tex_cell(c: Cell) -> str:
    text = tex_escape(c.text)
    return f"\\textbf{{{text}}}" if c.bold and c.text not in ("", "–") else text


def to_latex(t: Table) -> str:
    """A booktabs fragment (needs \\usepackage{booktabs}); first column left, others right."""
    spec = "l" + "r" * (len(t.columns) - 1)
    lines = [f"% {tex_escape(t.title)}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(tex_escape(c) for c in t.columns) + r" \\", "\\midrule"]
    for row in t.rows:
        lines.append(" & ".join(_tex_cell(c) for c in row) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if t.notes:  # the Markdown's notes (method, seeds short of the grid) as small print below
        lines += ["\\par\\smallskip", "{\\footnotesize"]
        lines += [_tex_note(n) + r"\par" for n in t.notes]
        lines.append("}")
    return "\n".join(lines) + "\n"


def _tex_note(text: str) -> str:
    """A Markdown note in LaTeX: escaped, with `code` in \\texttt and **bold** in \\textbf."""
    text = re.sub(r"`([^`]*)`", r"\\texttt{\1}", tex_escape(text))
    return re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", text)


def to_text(t: Table, columns: list[str] | None = None, max_width: int = 44) -> str:
    """Aligned plain text for a terminal (bold shown as a trailing '^'; long cells cut with …)."""
    keep = [i for i, c in enumerate(t.columns) if columns is None or c in columns]

    def cut(text: str) -> str:
        return text if len(text) <= max_width else text[:max_width - 1] + "…"
    cells = [[t.columns[i] for i in keep]]
    for row in t.rows:
        cells.append([cut(row[i].text + ("^" if row[i].bold and row[i].text != "–" else ""))
                      for i in keep])
    widths = [max(len(r[j]) for r in cells) for j in range(len(keep))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(v.ljust(w) if j <= 1 else v.rjust(w)
                               for j, (v, w) in enumerate(zip(r, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join([t.title] + lines)
