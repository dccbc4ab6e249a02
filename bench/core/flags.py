"""Failure flags: the failure modes ganhacks names, detected on a cell's stored curves.

`detect_flags(curves, bce_loss=..., g_nonsaturating=...)` returns `[{"flag", "step", "detail"}]`,
the step being the first log point where the failure shows. Curves are `{name: [[step, value], ...]}` as the loss log
and the metric probe store them (`d_adv`, `g_adv`, `eval_modes`, ...). The thresholds below are
the whole definition; the README's "Failure flags" section repeats them.

- `d_collapse`: D's adversarial loss goes to ~0 ("D loss going to 0 is a failure mode",
  ganhacks): `d_adv` < D_COLLAPSE_LOSS for D_COLLAPSE_POINTS consecutive log points.
- `g_runaway`: G's adversarial loss grows large and keeps growing: `g_adv` > G_RUNAWAY_LOSS for
  G_RUNAWAY_POINTS consecutive log points, and not lower at the last of them than at the first.
  Both loss flags need the loss's scale, so they are detected only for the baseline's
  non-saturating BCE loss (2 ln 2 ~ 1.39 for D and ln 2 ~ 0.69 for G at D's chance level); a trick
  that replaces the adversarial loss (WGAN, hinge, ...) has other scales and is not flagged. With
  the minimax G loss (`train.g_loss`, log(1 - D(G(z))) <= 0) D's loss keeps its scale and is
  checked; G's cannot run away upwards and is not.
- `mode_drop`: an eval curve of covered modes (`eval_modes`, `eval_stacked_modes`) falls from its
  maximum by at least MODE_DROP_FRACTION of that maximum (and by at least MODE_DROP_MIN modes) and
  is still that low at its last point: G had found modes and lost them. Flagged at the first point
  on that line after the maximum. (A swing of one or two of ring8's 8 modes between curve points
  is common in runs that end well, hence the margin.)
- `oscillation`: a loss curve (`d_adv` or `g_adv`) swings up and down: over its last
  OSCILLATION_WINDOW points, the successive differences change sign in at least
  OSCILLATION_SIGN_CHANGES of the possible places, and their mean size is at least
  OSCILLATION_AMPLITUDE times the curve's mean absolute level in that window and at least
  OSCILLATION_MIN_SWING (so jitter of a loss near 0, e.g. a collapsed D, is not a swing). Averaging over
  `log_every` steps removes step-to-step noise, so what is left is a slow swing. Scale-free, so it
  is checked whatever the loss.

HARD_FLAGS are the ones that end a cell early when its `train.stop_on` is "hard" (checked at every
log point): the run has left the regime the comparison is about and will not come back.
"""
from __future__ import annotations

from typing import Any

D_COLLAPSE_LOSS = 0.05  # BCE D loss (real + fake); 2 ln 2 ~ 1.39 when D is at chance
D_COLLAPSE_POINTS = 3
G_RUNAWAY_LOSS = 5.0  # -log D(G(z)) = 5 means D gives fakes ~0.7% probability of being real
G_RUNAWAY_POINTS = 3
MODE_DROP_FRACTION = 0.4
MODE_DROP_MIN = 2.0
OSCILLATION_WINDOW = 8
OSCILLATION_SIGN_CHANGES = 0.8
OSCILLATION_AMPLITUDE = 0.5
OSCILLATION_MIN_SWING = 0.1

HARD_FLAGS = ("d_collapse", "g_runaway")
MODE_CURVES = ("eval_modes", "eval_stacked_modes")
LOSS_CURVES = ("d_adv", "g_adv")

Curve = list[list[float]]


def _flag(flag: str, step: float, detail: str) -> dict[str, Any]:
    return {"flag": flag, "step": int(step), "detail": detail}


def _first_run(curve: Curve, test, length: int) -> int | None:
    """Index where the first run of `length` consecutive points passing `test` starts."""
    run = 0
    for i, (_, v) in enumerate(curve):
        run = run + 1 if test(v) else 0
        if run == length:
            return i - length + 1
    return None


def d_collapse(curve: Curve) -> dict[str, Any] | None:
    i = _first_run(curve, lambda v: v < D_COLLAPSE_LOSS, D_COLLAPSE_POINTS)
    if i is None:
        return None
    return _flag("d_collapse", curve[i][0],
                 f"d_adv < {D_COLLAPSE_LOSS:g} for {D_COLLAPSE_POINTS} log points from step "
                 f"{int(curve[i][0])} ({curve[i][1]:.3g})")


def g_runaway(curve: Curve) -> dict[str, Any] | None:
    run_start, run = 0, 0
    for i, (_, v) in enumerate(curve):
        if v > G_RUNAWAY_LOSS:
            run_start, run = (i, 1) if run == 0 else (run_start, run + 1)
            if run >= G_RUNAWAY_POINTS and curve[i][1] >= curve[run_start][1]:
                s, first, last = curve[run_start][0], curve[run_start][1], curve[i][1]
                return _flag("g_runaway", s, f"g_adv > {G_RUNAWAY_LOSS:g} for {run} log points "
                                             f"from step {int(s)} ({first:.3g} -> {last:.3g})")
        else:
            run = 0
    return None


def mode_drop(curve: Curve, name: str) -> dict[str, Any] | None:
    if not curve:
        return None
    values = [v for _, v in curve]
    top = max(values)
    peak = values.index(top)
    line = top - max(MODE_DROP_FRACTION * top, MODE_DROP_MIN)
    if values[-1] > line:
        return None  # recovered (or never fell)
    for s, v in curve[peak + 1:]:
        if v <= line:
            return _flag("mode_drop", s, f"{name} fell from {top:g} (step {int(curve[peak][0])}) "
                                         f"to {v:g}")
    return None


def oscillation(curve: Curve, name: str) -> dict[str, Any] | None:
    window = curve[-OSCILLATION_WINDOW:]
    if len(window) < OSCILLATION_WINDOW:
        return None
    values = [v for _, v in window]
    diffs = [b - a for a, b in zip(values, values[1:])]
    changes = sum(1 for a, b in zip(diffs, diffs[1:]) if a * b < 0)
    swing = sum(abs(d) for d in diffs) / len(diffs)
    level = sum(abs(v) for v in values) / len(values)
    if changes < OSCILLATION_SIGN_CHANGES * (len(diffs) - 1) or swing < max(OSCILLATION_AMPLITUDE * level,
                                                                    OSCILLATION_MIN_SWING):
        return None
    return _flag("oscillation", window[0][0],
                 f"{name} swings by {swing:.3g} on a level of {level:.3g} over the last "
                 f"{len(window)} log points ({changes} reversals)")


def detect_flags(curves: dict[str, Curve], *, bce_loss: bool = True,
                 g_nonsaturating: bool = True) -> list[dict[str, Any]]:
    """Every flag found, ordered by step. `bce_loss`: the adversarial loss is the baseline's BCE
    (the loss flags need its scale); `g_nonsaturating`: G's part of it is -log D(G(z))."""
    found = []
    if bce_loss:
        found.append(d_collapse(curves.get("d_adv", [])))
        if g_nonsaturating:
            found.append(g_runaway(curves.get("g_adv", [])))
    for name in MODE_CURVES:
        if name in curves:
            found.append(mode_drop(curves[name], name))
    for name in LOSS_CURVES:
        if name in curves:
            found.append(oscillation(curves[name], name))
    return sorted((f for f in found if f is not None), key=lambda f: (f["step"], f["flag"]))


def hard_flags(flags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in flags if f["flag"] in HARD_FLAGS]


def format_flags(flags: list[dict[str, Any]]) -> str:
    """`d_collapse@1200,mode_drop@1500` for one-line summaries; a flag raised on two curves at
    the same step (`oscillation` of d_adv and g_adv) is named once (the details keep both)."""
    return ",".join(dict.fromkeys(f"{f['flag']}@{f['step']}" for f in flags))
