"""Which tricks fuse, as docs/fused.md's table says (checked by tests/test_fused_scheduler.py):
`trick_support(name, params, kind)` probes a ring8 or digits cell with the trick through the
same refusals the planner uses (bench/schedule/fused/plan.py); `support_table()` is the table;
`python -m bench.schedule.fused.support docs/fused.md` rewrites it between its markers.
"""
from __future__ import annotations

from bench.core.config import CellConfig
from bench.schedule.fused.plan import layer_refusal
from bench.schedule.runner import disallowed_record
from bench.trickapi.registry import create_trick
from bench.train.fused.tricks import refusal

# -- which tricks fuse (docs/fused.md's table is this, checked by tests/test_fused_scheduler.py) --
# param settings whose fused form differs from the default's (refused, or refused at default)
PARAM_CASES: dict[str, list[dict]] = {
    "gradient_penalty": [{"variant": "dragan"}, {"interval": 4}],
    "unrolled": [{"g_objective": "value"}, {"first_order": True}],
}


def _probe_cell(name: str, params: dict, kind: str = "2d") -> CellConfig:
    from bench.core.config import DataConfig, NetConfig, OptimConfig, TrainConfig
    from bench.schedule.grid import full_spec

    opt = OptimConfig(lr=1e-3)
    data, width = (DataConfig("ring8"), 16) if kind == "2d" else (DataConfig("digits"), 8)
    return CellConfig(data=data, net=NetConfig(z_dim=8, width=width, depth=2),
                      train=TrainConfig(steps=10, batch_size=16, g_optim=opt, d_optim=opt),
                      tricks=(full_spec(name, params),), seed=0)


NOT_APPLICABLE = "not applicable"


def trick_support(name: str, params: dict | None = None, kind: str = "2d") -> str | None:
    """Why a cell of data `kind` ('2d': ring8, 'image': digits 16x16) with this trick (at
    `params`) trains alone (None: it fuses): the trick does not apply to that kind
    (NOT_APPLICABLE), a hook without a fused form, or a layer its `build` makes that has
    none."""
    from bench.trickapi.registry import get_trick_class

    params = params or {}
    if kind not in get_trick_class(name).applies_to:
        return NOT_APPLICABLE
    why = refusal(create_trick(name, **params))
    if why:
        return why
    cell = _probe_cell(name, params, kind)
    blocked = disallowed_record(cell)
    if blocked is not None:  # e.g. it needs a partner trick: judged with it, in its grid
        return f"not judged alone ({blocked.reason})"
    return layer_refusal(cell)


def support_table() -> str:
    """The Markdown table of docs/fused.md: every built-in trick, whether its 2-D and its image
    cells fuse, and the reason when they do not (plus the param settings of PARAM_CASES)."""
    from bench.trickapi.registry import get_trick_class, list_tricks

    def shown(why: str | None) -> str:
        if why is None:
            return "yes"
        if why == NOT_APPLICABLE:
            return "n/a"
        return "no: " + why.replace("|", "/")

    rows = ["| trick | 2-D cells | image cells |", "|---|---|---|"]
    for name in list_tricks():
        if not get_trick_class(name).__module__.startswith("tricks."):
            continue  # a plugin's: judged when it is installed (`trick_support`)
        for params in [{}] + PARAM_CASES.get(name, []):
            label = name + (" (" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"
                            if params else "")
            rows.append(f"| `{label}` | {shown(trick_support(name, params, '2d'))} | "
                        f"{shown(trick_support(name, params, 'image'))} |")
    return "\n".join(rows) + "\n"


DOC_START, DOC_END = "<!-- fused-tricks: start -->", "<!-- fused-tricks: end -->"


def write_doc(path) -> bool:
    """Put `support_table()` between the markers of `path`; True when it changed."""
    from pathlib import Path

    path = Path(path)
    text = path.read_text()
    head, rest = text.split(DOC_START, 1)
    _, tail = rest.split(DOC_END, 1)
    new = f"{head}{DOC_START}\n{support_table()}{DOC_END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":  # python -m bench.schedule.fused.support [docs/fused.md]
    import sys

    if len(sys.argv) > 1:
        print("updated" if write_doc(sys.argv[1]) else "up to date", sys.argv[1])
    else:
        print(support_table(), end="")
