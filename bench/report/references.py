"""Reference rows for the report: chance and true-data samplers scored by a dataset's metric
protocol (`bench.metrics.references`), shown as labelled rows in the tables and as lines in the
metric-curve figures, and used by the `at_chance` flag (`bench.report.validity`).

They are a property of (dataset, metric protocol), not of any run, so they are cached like the
metrics' reference features: `<cache>/references/<dataset>-v<version>-<protocol hash>.json`
(<cache>: $GANBENCH_CACHE, else ~/.cache/ganbench, as in `bench.metrics.cache`). On a miss the
report scores them in a child process (`python -m bench.metrics.references`), so the report
process imports no torch and old stores get them without re-scoring. 2-D sets are scored on a
miss (about a second after torch's import); image sets only when their file is cached already
or the report is asked to (`ganbench report --image-references`: scoring may train the suite's
classifier, minutes). A file records the protocol it was scored under; where that differs from
the records' (a newer metric code), the table note names the differing keys."""
from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from bench.core.chance import REFERENCES_VERSION
from bench.report.tables import Cell, Table, num

CACHE_ENV = "GANBENCH_CACHE"  # the metrics cache's variable (bench.metrics.cache imports torch)
COMPUTE_TIMEOUT_S = 600
ROLE_ORDER = {"chance": 0, "degraded": 1, "ceiling": 2}


@dataclass
class References:
    """The reference rows of one dataset, or why there are none (`missing`)."""

    dataset: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # name, role, label, metrics
    protocol: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    path: str = ""
    missing: str = ""  # why there are no rows
    differs: list[str] = field(default_factory=list)  # protocol keys unlike the records'

    def chance(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["role"] == "chance"]

    def note(self) -> str:
        if self.missing:
            return f"Reference rows: none ({self.missing})."
        roles = ", ".join(f"{r['label']}" for r in self.rows)
        text = (f"Reference rows (no GAN; scored by the same protocol over seeds "
                f"{_seed_text(self.seeds)}, mean ± sd (n seeds); `bench.metrics.references`): "
                f"{roles}.")
        if self.differs:
            text += (" They were scored under the current metric code, whose protocol differs "
                     f"from the records' in: {', '.join(self.differs)}.")
        return text


def _seed_text(seeds: list[int]) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else str(seeds)


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "ganbench")
    return Path(root).expanduser().absolute() / "references"


def protocol_key(protocol: Mapping[str, Any]) -> dict[str, Any]:
    """What reference rows depend on: the protocol without its seed and re-scoring history."""
    return {k: v for k, v in protocol.items() if k not in ("seed", "previous")}


def cache_path(dataset: str, protocol: Mapping[str, Any], resolution: int | None = None) -> Path:
    digest = hashlib.sha256(json.dumps(protocol_key(protocol), sort_keys=True,
                                       default=str).encode()).hexdigest()[:12]
    at = f"@{int(resolution)}px" if _given(resolution) else ""
    return cache_dir() / f"{dataset}{at}-v{REFERENCES_VERSION}-{digest}.json"


def _given(resolution) -> bool:
    return resolution is not None and resolution == resolution  # NaN from a DataFrame: none


def _compute(dataset: str, protocol: Mapping[str, Any], path: Path, resolution=None) -> str:
    """Score the references in a child process; '' on success, else one line saying why."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    cmd = [sys.executable, "-m", "bench.metrics.references", "--dataset", dataset,
           "--protocol", json.dumps(dict(protocol), default=str), "--out", str(tmp)]
    if _given(resolution):
        cmd += ["--resolution", str(int(resolution))]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPUTE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"scoring them failed: {type(e).__name__}"
    if res.returncode != 0 or not tmp.exists():
        lines = [x for x in res.stderr.strip().splitlines() if x.strip()]
        tmp.unlink(missing_ok=True)
        return f"scoring them failed: {lines[-1] if lines else 'exit ' + str(res.returncode)}"
    os.replace(tmp, path)
    return ""


def references_for(dataset: str, protocol: Mapping[str, Any] | None,
                   compute: bool | None = None, resolution: int | None = None) -> References:
    """The reference rows for `dataset` under a records' `protocol` (cached, else scored when
    `compute`; default: 2-D sets only)."""
    if not protocol:
        return References(dataset, missing="the records have no metric protocol")
    kind = protocol.get("kind")
    compute = kind == "2d" if compute is None else compute
    path = cache_path(dataset, protocol, resolution)
    if not path.exists():
        if not compute:
            return References(dataset, missing=(
                "not cached; `ganbench report --image-references` scores them"))
        why = _compute(dataset, protocol, path, resolution)
        if why:
            return References(dataset, missing=why)
    try:
        data = json.loads(path.read_text())
        rows = sorted(data["rows"], key=lambda r: ROLE_ORDER.get(r["role"], 9))
    except (OSError, ValueError, KeyError) as e:
        return References(dataset, missing=f"unreadable cache file {path} ({type(e).__name__})")
    mine, theirs = protocol_key(protocol), protocol_key(data.get("protocol", {}))
    differs = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    return References(dataset, rows, data.get("protocol", {}), list(data.get("seeds", [])),
                      str(path), differs=differs)


def prevailing_protocol(rows: pd.DataFrame) -> dict[str, Any]:
    """The metric protocol most of these (current, scored) rows were scored under."""
    done = rows[(rows["status"] == "done") & (rows["protocol_hash"] != "")]
    if done.empty:
        return {}
    top = done["protocol_hash"].value_counts().index[0]
    return dict(done.loc[done["protocol_hash"] == top, "protocol"].iloc[0])


def mean_sd_n(values: list[float]) -> tuple[float, float, int]:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return math.nan, math.nan, 0
    mean = sum(v) / len(v)
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else math.nan
    return mean, sd, len(v)


def append_rows(table: Table, refs: References) -> None:
    """The reference rows under a delta table's rows (Markdown, LaTeX and CSV), and its note.
    Metric columns are those whose header starts with a metric the references have; the rows
    carry no Δ, parameters or flags."""
    table.notes.append(refs.note())
    if not refs.rows:
        return
    metrics = {m for r in refs.rows for m in r["metrics"]}
    records = []
    for ref in refs.rows:
        rec: dict[str, Any] = {"variant": ref["label"], "role": f"reference:{ref['role']}",
                               "status": "reference", "n_seeds": len(refs.seeds),
                               "n_done": len(refs.seeds)}
        cells = []
        for i, col in enumerate(table.columns):
            metric = col.split(" ")[0]
            if i == 0:
                cells.append(Cell(ref["label"]))
            elif col == "status":
                cells.append(Cell(f"reference ({ref['role']})"))
            elif col == "n":
                cells.append(Cell(f"{len(refs.seeds)} seeds"))
            elif metric in metrics and not col.startswith(("Δ", "d_")) and "[95% CI]" not in col:
                mean, sd, n = mean_sd_n(ref["metrics"].get(metric, []))
                rec.update({f"{metric}_mean": mean, f"{metric}_std": sd, f"{metric}_n": n})
                cells.append(Cell("–" if n == 0 else f"{num(mean)} ± {num(sd)} ({n})"))
            else:
                cells.append(Cell(""))
        table.rows.append(cells)
        records.append(rec)
    table.numbers = pd.concat([table.numbers, pd.DataFrame(records)], ignore_index=True)


def curve_lines(refs: References | None) -> dict[str, list[tuple[str, str, float, float]]]:
    """{metric: [(label, role, mean, sd)]} for the metric-curve figures' reference lines."""
    out: dict[str, list[tuple[str, str, float, float]]] = {}
    for ref in (refs.rows if refs else []):
        for metric, values in ref["metrics"].items():
            mean, sd, n = mean_sd_n(values)
            if n:
                out.setdefault(metric, []).append((ref["label"], ref["role"], mean,
                                                   0.0 if math.isnan(sd) else sd))
    return out


def for_records(df: pd.DataFrame, compute: bool | None = None) -> dict[str, References]:
    """{data: References} for every dataset (at its resolution) of `load_records` rows, under
    the protocol most of its scored rows were scored under."""
    out: dict[str, References] = {}
    if df.empty or "protocol" not in df:
        return out
    for data, rows in df.groupby("data", sort=False):
        protocol = prevailing_protocol(rows)
        out[data] = references_for(rows["dataset"].iloc[0], protocol, compute,
                                   resolution=rows["resolution"].iloc[0])
    return out
