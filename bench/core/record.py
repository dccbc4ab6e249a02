"""Record: what a finished, diverged or disallowed cell produced. Reports read only records."""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

# done: trained and scored; diverged: a loss went non-finite (step says when);
# failed: the cell raised (reason: one line; the traceback is kept in `error`);
# conflict / not-applicable: the grid asked for a combination the tricks do not allow.
STATUSES = ("done", "diverged", "failed", "conflict", "not-applicable")


@dataclass
class Record:
    cell_id: str
    variant_id: str
    label: str  # tricks joined by '+', or 'baseline'
    config: dict[str, Any]
    status: str
    step: int = 0
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list[list[float]]] = field(default_factory=dict)  # name -> [[step, value]]
    timings: dict[str, float] = field(default_factory=dict)  # train_s, eval_s, ms_per_step
    versions: dict[str, str] = field(default_factory=dict)
    device: str = ""
    created_at: float = field(default_factory=time.time)
    # trainable parameter counts {"g_params", "d_params"}: capacity beside every row
    nets: dict[str, int] = field(default_factory=dict)
    # effective optimizer settings after the tricks' `optimizer` hook:
    # {"G": {"lr", "beta1", "beta2"}, "D": {...}, "d_steps": n}
    optim: dict[str, Any] = field(default_factory=dict)
    # where and how it ran: {"device", "threads", ...}
    runtime: dict[str, Any] = field(default_factory=dict)
    # failure flags detected on the curves: [{"flag", "step", "detail"}]
    flags: list[dict[str, Any]] = field(default_factory=list)
    # earlier versions of this record (re-scoring, retraining, retries), oldest first:
    # [{"event", "at", ...what changed}]
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""  # the traceback of a `failed` cell (the reason is its last line)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown record status '{self.status}' (known: {', '.join(STATUSES)})")

    @property
    def dataset(self) -> str:
        return self.config["data"]["name"]

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, allow_nan=True)

    @staticmethod
    def from_json(text: str) -> "Record":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(Record)}
        return Record(**{k: v for k, v in data.items() if k in known})

    def result_text(self) -> str:
        """What the cell produced, for terminals: headline metrics, train/eval seconds and
        failure flags (e.g. flags=d_collapse@1200), or the reason it did not finish."""
        from bench.core.flags import format_flags

        flags = ["flags=" + format_flags(self.flags)] if self.flags else []
        if self.status != "done":
            return "  ".join([self.reason] + flags).strip()
        shown = ("modes", "high_quality", "reverse_kl", "modes_strict", "fid", "kid_mean", "is_mean",
                 "precision", "recall", "stacked_modes")
        parts = [f"{k}={_fmt(self.metrics[k])}" for k in shown if k in self.metrics]
        for key in ("train_s", "eval_s"):  # the train vs eval split of the cell's cost
            if key in self.timings:
                parts.append(f"{key[:-2]}={self.timings[key]:.1f}s")
        return " ".join(parts + flags)

    def summary_line(self) -> str:
        """One line per cell for terminals (`ganbench run` and `show` align them in a table)."""
        head = (f"{self.cell_id}  {self.dataset:<14} {self.label:<32} seed={self.seed:<3} "
                f"{self.status:<9}")
        return f"{head} {self.result_text()}".rstrip()


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) >= 1 else f"{v:.3g}"
