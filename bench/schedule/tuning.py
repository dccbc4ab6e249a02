"""Held-out-seed tuning: the two-stage schedule of a grid with `tune_seeds`.

Stage 1 trains every variant at every candidate setting of its tuned axes (`[tune] lr`, and
`[tune] "trick.param"` for the variants holding that trick) on the *tuning* seeds. The setting of
each variant is then chosen by a stated metric (the best mean over the tuning seeds), and stage 2
trains that setting on the *evaluation* seeds, which never took part in the choice
(Bouthillier et al. 2021: selection variance apart from evaluation variance).

The choice is a pure function of the stored stage-1 records (`choose`), so a resumed or
concurrent run resolves the same stage-2 cells, and stored ones are skipped as any cell is: a
run can stop anywhere and go on. A stage-2 cell is an ordinary cell (the seed's job is not part of
its id): a tuned cell equals an identical untuned cell. Which seeds did which job is written in
the grid memberships (`seed_role` = "tune" / "eval", with the tuning seeds, the metric and each
candidate's tuning score), which the report reads.

Imports no torch (dry runs and reports use it)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from bench.core.config import CellConfig
from bench.core.metric_directions import METRIC_DIRECTIONS

# The metric each variant's setting is chosen on when a grid does not name one: graded metrics
# (mode counts often tie at the ceiling or at 0).
DEFAULT_TUNE_METRIC = {"2d": "reverse_kl", "image": "fid"}


def setting_text(setting: Mapping[str, Any]) -> str:
    """'lr=0.001, unrolled.k=3': a setting as the report and the terminal name it."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in setting.items())


@dataclass(frozen=True)
class Candidate:
    setting: tuple[tuple[str, Any], ...]  # ((axis, value), ...) in the grid's axis order
    template: CellConfig  # the cell at this setting; its seed is replaced per seed
    cost: float = 1.0  # network updates per step relative to the baseline's (Trick.step_cost)

    def cell(self, seed: int) -> CellConfig:
        return self.template.replace(seed=seed)


@dataclass(frozen=True)
class TuningPlan:
    """One variant (at one sweep point of the untuned axes) of one dataset: its candidates, the
    seeds of each job, and how the choice is made. `infos`: (design, member info) of every
    design that asked for the variant."""
    dataset: str
    label: str
    candidates: tuple[Candidate, ...]
    tune_seeds: tuple[int, ...]
    eval_seeds: tuple[int, ...]
    metric: str
    infos: tuple[tuple[str, dict], ...]

    @property
    def direction(self) -> str:
        return METRIC_DIRECTIONS.get(self.metric, "down")

    def tune_cells(self) -> list[CellConfig]:
        return [c.cell(s) for c in self.candidates for s in self.tune_seeds]


@dataclass(frozen=True)
class Choice:
    setting: dict[str, Any]
    scores: dict[str, list]  # setting text -> [mean over the tuning seeds, seeds scored]
    rule: str  # how it was chosen, one phrase


def _score(record: Any, metric: str) -> float | None:
    if record is None or getattr(record, "status", None) != "done":
        return None
    value = (getattr(record, "metrics", None) or {}).get(metric)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def choose(plan: TuningPlan, records: Mapping[str, Any]) -> Choice | None:
    """The setting of `plan` chosen on its tuning seeds from stored records (cell id -> record),
    or None while a tuning cell has no record. Rule: the best mean of the metric over the tuning
    seeds among the candidates scored on every tuning seed (a candidate that diverged or failed
    on one is not chosen while another finished on all); else the candidate scored on the most
    seeds, best mean first; ties go to the first candidate in grid order. When no candidate was
    scored at all (e.g. the variant is a conflict), the first candidate: its stage-2 cells are
    then stored with the same reason as its stage-1 cells."""
    values: list[list[float | None]] = []
    for cand in plan.candidates:
        row = []
        for seed in plan.tune_seeds:
            cid = cand.cell(seed).cell_id
            if cid not in records:
                return None
            row.append(_score(records[cid], plan.metric))
        values.append(row)
    sign = 1.0 if plan.direction == "up" else -1.0
    scores, ranked = {}, []
    for i, (cand, row) in enumerate(zip(plan.candidates, values)):
        got = [v for v in row if v is not None]
        mean = sum(got) / len(got) if got else math.nan
        scores[setting_text(dict(cand.setting))] = [mean, len(got)]
        if got:
            ranked.append((-len(got), -sign * mean, i))
    if not ranked:
        return Choice(dict(plan.candidates[0].setting), scores,
                      "no candidate was scored on a tuning seed: the first candidate")
    n_missing, _, best = min(ranked)
    rule = (f"best mean {plan.metric} over tuning seeds {list(plan.tune_seeds)}" if n_missing == -len(plan.tune_seeds)
            else f"best mean {plan.metric} among the candidates scored on the most tuning seeds "
                 f"({-n_missing} of {len(plan.tune_seeds)})")
    return Choice(dict(plan.candidates[best].setting), scores, rule)


def eval_members(plan: TuningPlan, choice: Choice) -> list[dict]:
    """The stage-2 memberships (Store.put_grid members) of a plan once its setting is chosen."""
    cand = next(c for c in plan.candidates if dict(c.setting) == choice.setting)
    out = []
    for seed in plan.eval_seeds:
        cell = cand.cell(seed)
        for design, info in plan.infos:
            out.append({"design": design, "dataset": plan.dataset, "cell_id": cell.cell_id,
                        "variant_id": cell.variant_id,
                        "info": {**info, "step_cost": cand.cost,
                                 "tune": dict(choice.setting), "seed_role": "eval",
                                 "tuned_on": list(plan.tune_seeds), "tune_metric": plan.metric,
                                 "tune_scores": choice.scores, "tune_rule": choice.rule}})
    return out


@dataclass
class Stage2:
    cells: list[CellConfig]  # to train (or already stored), in plan order
    members: list[dict]
    pending: list[TuningPlan]  # plans whose tuning cells are not all stored yet
    choices: dict[int, Choice]  # plan index -> choice


def resolve(plans: Iterable[TuningPlan], records: Mapping[str, Any]) -> Stage2:
    """Stage 2 as far as the stored stage-1 records decide it: a pure function of them."""
    out = Stage2([], [], [], {})
    for i, plan in enumerate(plans):
        choice = choose(plan, records)
        if choice is None:
            out.pending.append(plan)
            continue
        out.choices[i] = choice
        members = eval_members(plan, choice)
        out.members += members
        ids = {m["cell_id"] for m in members}
        cand = next(c for c in plan.candidates if dict(c.setting) == choice.setting)
        out.cells += [c for c in (cand.cell(s) for s in plan.eval_seeds) if c.cell_id in ids]
    return out


def records_for(store, cells: Iterable[CellConfig]) -> dict[str, Any]:
    """The stored records of these cells (cell id -> Record), for `resolve`."""
    out = {}
    for cell in cells:
        record = store.get(cell.cell_id)
        if record is not None:
            out[cell.cell_id] = record
    return out


def plan_key(plan: TuningPlan) -> str:
    """Identifies a plan within a grid: dataset, label and its untuned sweep values."""
    sweep = plan.infos[0][1].get("sweep", {}) if plan.infos else {}
    return f"{plan.dataset}/{plan.label}/{json.dumps(sweep, sort_keys=True, default=str)}"
