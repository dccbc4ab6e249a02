"""What `ganbench run` prints: a header, one aligned line per cell in grid order, and an
end-of-run summary. Records arrive in completion order; lines are printed in grid order (a line
waits for the cells before it), so two runs of one grid print the same table.

Lines go through `tqdm.write`, which lifts the progress bars (on stderr) off the terminal, prints
and redraws them, so a row never lands inside a bar. Labels longer than the column are cut in
the middle (`short_labels`), each to a text no other label of the table shares."""
from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Iterable, TextIO

from bench.core.config import CellConfig
from bench.core.record import STATUSES, Record

STATUS_W = max(len(s) for s in STATUSES)  # 'not-applicable' fits
LABEL_W = 40


def short_labels(labels: Iterable[str], width: int = LABEL_W) -> dict[str, str]:
    """{label: its text in a `width` column}: a longer label keeps its head and its tail (where
    trick combinations differ: `instance_noise+one_sid…+spectral_norm`), with as much tail as
    it takes to differ from every other label's text; one that differs from another only in
    its middle is kept whole (the column widens)."""
    labels = list(dict.fromkeys(labels))
    out = {x: x for x in labels if len(x) <= width}
    taken = set(out.values())
    for x in labels:
        if x in out:
            continue
        for tail in range(width // 2, width - 4):
            short = x[:width - 1 - tail] + "…" + x[-tail:]
            clash = [y for y in labels if y != x and len(y) > width
                     and y[:width - 1 - tail] == x[:width - 1 - tail] and y.endswith(x[-tail:])]
            if short not in taken and not clash:
                break
        else:
            short = x
        out[x] = short
        taken.add(short)
    return out


def emit(line: str, out: TextIO) -> None:
    """Print a line with the progress bars lifted and redrawn (tqdm.write), flushed."""
    from tqdm import tqdm

    tqdm.write(line, file=out)
    out.flush()


class RunTable:
    def __init__(self, cells: Iterable[CellConfig], out: TextIO,
                 records: Iterable[Record] = ()):
        """`records`: already stored ones to size the columns for (`ganbench show`)."""
        self.cells = list({c.cell_id: c for c in cells}.values())  # the baseline may recur
        self.order = {c.cell_id: i for i, c in enumerate(self.cells)}
        self.out = out
        labels = [c.label for c in self.cells] + [r.label for r in records]
        datasets = [c.data.name for c in self.cells] + [r.dataset for r in records]
        self.short = short_labels(labels)
        self.label_w = max([8] + [len(x) for x in self.short.values()])
        self.data_w = max([7] + [len(x) for x in datasets])
        self.ready: dict[int, Record] = {}
        self.next = 0
        self.counts: Counter[str] = Counter()
        self.started = time.perf_counter()

    def header(self, title: str) -> None:
        print(title, file=self.out)
        print(f"{'cell':<16}  {'dataset':<{self.data_w}}  {'variant':<{self.label_w}}  "
              f"{'seed':>4}  {'status':<{STATUS_W}}  result", file=self.out, flush=True)

    def line(self, r: Record) -> str:
        if r.label not in self.short:  # a record no cell of the table announced
            self.short = short_labels([*self.short, r.label])
        label = self.short[r.label]
        tail = r.result_text()
        return (f"{r.cell_id:<16}  {r.dataset:<{self.data_w}}  {label:<{self.label_w}}  "
                f"{r.seed:>4}  {r.status:<{STATUS_W}}  {tail}").rstrip()

    def extend(self, cells: Iterable[CellConfig], title: str) -> None:
        """More cells after the ones listed (held-out tuning's stage 2, resolved after stage 1),
        under a line saying what they are; printed in their order, as the first ones."""
        self.flush_rest()
        new = [c for c in cells if c.cell_id not in self.order]
        for c in new:
            self.order[c.cell_id] = len(self.cells)
            self.cells.append(c)
        self.next = len(self.cells) - len(new)
        self.short = short_labels([*self.short, *(c.label for c in new)])
        emit(title, self.out)

    def add(self, record: Record) -> None:
        self.counts[record.status] += 1
        i = self.order.get(record.cell_id)
        if i is None:
            emit(self.line(record), self.out)
            return
        self.ready[i] = record
        while self.next in self.ready:
            emit(self.line(self.ready.pop(self.next)), self.out)
            self.next += 1

    def flush_rest(self) -> None:
        """After an interruption: print what finished, still in grid order."""
        for i in sorted(self.ready):
            emit(self.line(self.ready.pop(i)), self.out)

    @property
    def finished(self) -> bool:
        """Every cell of the table has its record (an interruption then cost nothing)."""
        return sum(self.counts.values()) >= len(self.cells)

    def summary(self, store: str, total: int) -> str:
        wall = time.perf_counter() - self.started
        done = sum(self.counts.values())
        parts = [f"{n} {s}" for s in STATUSES if (n := self.counts.get(s))]
        missing = total - done
        if missing:
            parts.append(f"{missing} not run")
        return (f"{done}/{total} cells: {', '.join(parts) or 'none'}; "
                f"wall {wall:.1f}s; store {store}")

    def exit_code(self, store: str) -> int:
        """1 with a hint on stderr when a cell failed (a result with failed cells is not a clean
        one), else 0: `run`'s and `compare`'s exit code."""
        failed = self.counts.get("failed", 0)
        if not failed:
            return 0
        print(f"ganbench: {failed} cell(s) failed (reasons above; tracebacks in the records: "
              f"ganbench show --store {store} --json); rerun them with --retry failed",
              file=sys.stderr)
        return 1
