"""Live curves in TensorBoard: optional, off by default.

`ganbench train|run|compare --tensorboard DIR` (or $GANBENCH_TENSORBOARD=DIR, which pool workers
inherit) gives each cell one TensorBoard run, `DIR/<dataset>-<label>-s<seed>-<cell id>`, written
while it trains through torch's `SummaryWriter` (needs the `tensorboard` package):

- `loss/<term>`: every logged loss term (D's and G's, per trick term) at each log point;
- `eval/<metric>`: the cheap metric curves (`--curve-every`) at each of their points;
- `final/<metric>`: the scored metrics at the last step, the result line as text, and the
  sample grid (images: 64 samples; 2-D: a density image of the scored points) as an image.

The writer only mirrors what the trainer stores in its curves, so a cell trains and scores the
same with it or without it. A resumed cell continues its run: TensorBoard drops the events an
interrupted attempt wrote from the step it resumes from on (`purge_step`), and the resumed attempt
writes the points from that step; each checkpoint first waits until the cell's run is on disk up
to its step (`flush`), so a killed process loses no point the resume does not write.

Fused cells (several cells trained as one step, bench/train/fused) write the same runs: each
cell's Trainer holds its writer, the engine syncs every cell's curves after each log point and
probe (`FusedTrainer._sync_boards`) and flushes a cell's run before its checkpoint, and
bench/schedule/fused/group.py writes each cell's final metrics and closes its run, so TensorBoard
does not turn fusion off. A group of K cells holds K runs open at once: one SummaryWriter per
cell, each with one idle writer thread and no open file (tensorboard appends to a local event
file by opening it per write). Measured with tensorboard 2.21: K=64 writers add 64 threads and
~5 MiB, K=512 (a GPU group's maximum) 512 threads and ~45 MiB, and a scalar costs ~80 us
whatever K: nothing to bound at these sizes."""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any, Mapping

ENV = "GANBENCH_TENSORBOARD"


def missing_reason() -> str | None:
    """Why TensorBoard logging cannot work here (one line), or None when it can."""
    if importlib.util.find_spec("tensorboard") is None:
        return ("--tensorboard needs the tensorboard package, which is not installed "
                "(pip install tensorboard)")
    return None


def run_name(cell) -> str:
    """`<dataset>-<label>-s<seed>-<cell id>`, with characters a folder name should not hold
    replaced by _."""
    name = f"{cell.data.name}-{cell.label}-s{cell.seed}-{cell.cell_id}"
    return re.sub(r"[^A-Za-z0-9._+=-]", "_", name)


def tag(curve: str) -> str:
    return f"eval/{curve[5:]}" if curve.startswith("eval_") else f"loss/{curve}"


class CellWriter:
    """One cell's TensorBoard run; `sync` writes the curve points added since the last call."""

    def __init__(self, root: Path, cell) -> None:
        self.cell = cell
        self.dir = Path(root) / run_name(cell)
        self.writer = None
        self.written: dict[str, int] = {}

    def start(self, curves: Mapping[str, list], step: int) -> None:
        """Open the run at `step` (0, or where a resumed cell goes on from)."""
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.dir), purge_step=step or None)
        # a resumed cell's points before `step` were written by the attempt that made them;
        # TensorBoard drops that attempt's events from `step` on (the purge), so the points at
        # `step` itself (a log point or probe at the checkpoint) are written again here
        self.written = {name: sum(1 for s, _ in pts if s < step) if step else 0
                        for name, pts in curves.items()}
        if not step:
            c = self.cell
            self.writer.add_text("cell", f"{c.data.name} {c.label} seed {c.seed} "
                                         f"(cell {c.cell_id}, {c.train.steps} steps)", 0)

    def sync(self, curves: Mapping[str, list]) -> None:
        if self.writer is None:
            return
        for name, pts in curves.items():
            done = self.written.get(name, 0)
            if len(pts) > done:
                for step, value in pts[done:]:
                    self.writer.add_scalar(tag(name), float(value), int(step))
                self.written[name] = len(pts)

    def flush(self, curves: Mapping[str, list]) -> None:
        """Write the new points and wait until the writer thread has put every event on disk:
        called before each checkpoint, so a process killed after it leaves a run that holds
        every point the checkpoint holds (the resumed attempt writes only those after it)."""
        if self.writer is not None:
            self.sync(curves)
            self.writer.flush()

    def final(self, record, sample_file: Path | None = None) -> None:
        """The scored metrics, the result line and the sample grid at the last step."""
        if self.writer is None:
            return
        try:
            self._final(record, sample_file)
        except Exception as exc:  # noqa: BLE001  (a full disk must not fail a scored cell)
            import sys

            print(f"ganbench: warning: TensorBoard run {self.dir}: {type(exc).__name__}: {exc}",
                  file=sys.stderr)

    def _final(self, record, sample_file: Path | None) -> None:
        self.sync(record.curves)
        step = int(record.step)
        for metric, value in record.metrics.items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"final/{metric}", float(value), step)
        self.writer.add_text("result", f"{record.status}: {record.result_text()}", step)
        image = sample_image(sample_file) if sample_file is not None else None
        if image is not None:
            self.writer.add_image("final/samples", image, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def open_for(cell) -> CellWriter | None:
    """The cell's writer when $GANBENCH_TENSORBOARD names a folder (the CLI checked the package
    is there), else None."""
    root = os.environ.get(ENV)
    if not root:
        return None
    reason = missing_reason()
    if reason:  # set by hand without the package: say so once, train as usual
        if not _said:
            import sys

            print(f"ganbench: warning: ${ENV} is set but {reason.split(', ', 1)[-1]}; no "
                  f"TensorBoard runs are written", file=sys.stderr)
            _said.append(True)
        return None
    return CellWriter(Path(root), cell)


_said: list[bool] = []


def sample_image(sample_file: Path) -> Any:
    """A cell's sample file as an HWC uint8 image: the tiled image grid, or for 2-D points a
    160x160 density image (dark) with the mode centres in red; None without one."""
    import numpy as np

    from bench.store.samples import IMAGE_SAMPLES, points_image, tile_images

    if not Path(sample_file).exists():
        return None
    with np.load(sample_file) as z:
        data = {k: z[k] for k in z.files}
    if "images" in data:
        grid = tile_images(data["images"][:IMAGE_SAMPLES])
        return np.repeat(grid, 3, axis=2) if grid.shape[2] == 1 else grid
    if "points" not in data:
        return None
    return (points_image(data["points"], data.get("centres")) * 255).astype(np.uint8)
