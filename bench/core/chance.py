"""Degenerate-run checks, torch-free: D's loss at its chance value, and final metrics no better
than a chance reference. The report applies them to stored records (old stores included), so
the tolerances below are the whole definition; the README's "Failure flags" section repeats them.

- `d_at_chance`: D's adversarial loss (`d_adv`, summed over the real and fake terms as the
  trainer logs it) stays within D_CHANCE_TOL of its chance value at >= D_CHANCE_SHARE of its log
  points (and at least D_CHANCE_MIN_POINTS of them): D never told real from fake, for most of
  training. The chance value is the loss of the best *constant* D, i.e. of a D that has learned
  nothing (`d_chance_value`):
  * BCE (the baseline, either G loss): 2 H(p) with p = (t_real + t_fake) / 2, the mean of D's
    targets: 2 ln 2 ~ 1.386 for targets 1/0 and for label flips or two-sided smoothing (their
    targets stay symmetric); one-sided smoothing to 0.9 gives 2 H(0.45) ~ 1.376.
  * relativistic: pairing (RpGAN) softplus(0) = ln 2; average (RaGAN, two BCE terms) 2 ln 2.
  * dual_discriminator (D2GAN): the constant D1 = alpha, D2 = beta minimises
    -alpha log D1 + D1 + D2 - beta log D2, giving alpha(1 - ln alpha) + beta(1 - ln beta)
    (0.852 at alpha 0.2, beta 0.1).
  * wgan_gp: none. Every constant critic has loss 0, but so has a critic at the optimum of a
    well-trained G, and the loss's scale is set by the penalty, so no tolerance means anything:
    not checked.
  * a trick this module does not know (a plug-in, or a built-in added later) may replace the
    loss or D's targets: not checked, and the reason says so (tests/test_chance.py fails until a
    new built-in trick is classified here).
  * a trick that holds D's loss at its chance value *by design* (HOLDS_D_AT_CHANCE): not
    checked, because there D's loss says nothing about whether G learned; only `at_chance`
    (the metrics against the chance rows) applies to its cells. `gradient_penalty`'s R1
    (Mescheder et al. 2018) pulls D's gradient on the real data to 0, and at the equilibrium it
    is built for (G = data) the penalised D is constant: its loss sits at 2 ln 2 while G
    learns. On the committed records the check flagged R1 cells that had learned: in
    `results/cpu-default` 5 of 7 ring8 R1 cells sit within 0.01 of 2 ln 2 at >= 90% of their
    log points, and 4 of those 5 reach 8 modes with 11-18% high quality (a uniform ring: 4.2%;
    the fifth, 7 modes and 2.4%, is left to `at_chance`); in `results/previous-default` 8 of
    9, of which 7 have 8 modes and 5-29%. No other built-in trick's cell carries the flag in
    those two stores. DRAGAN (`variant = "dragan"`)
    pulls the gradient's norm to 1, not 0, and R1 at weight 0 is no penalty: both are
    checked. `relativistic`'s own R1 + R2 (gamma 0.05) is checked too: its chance value is the
    loss's, and none of its stored cells is flagged.
  A learning run leaves the chance value early (D learns faster than G at first) and may come
  back near it as G improves; briefly returning does not reach the share. On the committed
  records of `paper-2d`'s G lr 1e-3 run (results/paper-2d-glr1e-3) every BCE cell is within
  0.004 of 2 ln 2 at all 100 log points of its 25,000 steps and every dual_discriminator cell
  within 0.01 of 0.852 at 97-99 of them; the learning `cpu-default` ring8 baselines are within
  0.01 of 2 ln 2 at 0-2 of their 40.
- `at_chance`: the cell's final metrics are no better than a chance reference (a structureless
  sampler scored by the same protocol over several seeds, `bench.metrics.references`) beyond
  seed noise: there is a chance reference that the cell does not beat on ANY shared headline
  metric, where beating means being better than the reference's mean by more than
  AT_CHANCE_Z of its standard deviations over seeds (strictly better when its sd is 0).
  E.g. a ring8 cell with 5 modes, 2% high quality and reverse KL 0.73 does not beat a uniform
  ring (8 modes, 4.2 ± 0.6% high quality, reverse KL 0.03) anywhere.

A cell is *degenerate* when it carries either flag; a table row when more than half of its
scored seeds are. A Δ between a degenerate row and a degenerate reference row is not an effect
(`bench.report.validity`).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

D_CHANCE_TOL = 0.01  # nats, absolute: D's loss within this of its chance value
D_CHANCE_SHARE = 0.9  # of the log points
D_CHANCE_MIN_POINTS = 5
AT_CHANCE_Z = 2.0
VALIDITY_FLAGS = ("d_at_chance", "at_chance")

# Reference rows (bench.metrics.references): bump REFERENCES_VERSION when a sampler changes, so
# cached files are not reused.
REFERENCES_VERSION = 2  # 2: the `collapsed` 2-D chance row
REFERENCE_SEEDS = (0, 1, 2, 3, 4)

LN2 = math.log(2.0)

# Built-in tricks that leave D's adversarial loss and its targets as they are.
KEEPS_D_LOSS = frozenset({
    "batch_norm", "conditional", "dropout", "ema_generator", "feature_matching",
    "gradient_penalty", "historical_averaging", "instance_noise", "lr_cyclic", "lr_step_decay",
    "lr_warmup", "minibatch_discrimination", "minibatch_stddev", "packing", "path_length",
    "progressive_growing", "self_attention", "spectral_norm", "stylegan", "ttur", "unrolled",
    "virtual_batch_norm", "weight_penalty"})
# Built-in tricks that hold D's loss at its chance value by design, when their params say so:
# params -> the reason (the D-loss check is skipped; `at_chance` still applies), or None.
HOLDS_D_AT_CHANCE = {
    "gradient_penalty": lambda p: (
        "R1 pulls D's gradient on the real data to 0, so D's loss stays near its chance value "
        "while G learns (Mescheder et al. 2018): judged by its metrics (at_chance) only"
        if p.get("variant", "r1") == "r1" and float(p.get("weight", 10.0)) > 0 else None),
}
# Built-in tricks that change D's targets: (t_real, t_fake) -> their means under the trick.
TARGET_TRICKS = {
    "label_smoothing": lambda t, p: tuple(x * p.get("real", 0.9) + (1 - x) * p.get("fake", 0.1)
                                          for x in t),
    "one_sided_label_smoothing": lambda t, p: tuple(x * p.get("real", 0.9) for x in t),
    "label_flip": lambda t, p: ((1 - p.get("fraction", 0.05)) * t[0] + p.get("fraction", 0.05) * t[1],
                                (1 - p.get("fraction", 0.05)) * t[1] + p.get("fraction", 0.05) * t[0]),
}
# Built-in tricks that replace the loss: params -> (chance value or None, how it was found).
LOSS_TRICKS = {
    "relativistic": lambda p: ((LN2, "ln 2 (RpGAN: softplus(0))") if p.get("variant", "pairing") == "pairing"
                               else (2 * LN2, "2 ln 2 (RaGAN: two BCE terms at 0)")),
    "dual_discriminator": lambda p: (_d2gan(p.get("alpha", 0.2), p.get("beta", 0.1)),
                                     "D2GAN's constant optimum alpha(1 - ln alpha) + beta(1 - ln beta)"),
    "wgan_gp": lambda p: (None, "a critic's loss has no chance value (0 for any constant critic "
                                "and at the optimum; its scale is set by the penalty)"),
}


def _d2gan(alpha: float, beta: float) -> float:
    return alpha * (1 - math.log(alpha)) + beta * (1 - math.log(beta))


def _binary_entropy(p: float) -> float:
    return -sum(q * math.log(q) for q in (p, 1 - p) if q > 0)


def d_chance_value(tricks: Mapping[str, Mapping[str, Any]]) -> tuple[float | None, str]:
    """D's adversarial loss at chance for a cell with these tricks ({name: params}, in order),
    and how it was found (or why there is none)."""
    unknown = [t for t in tricks if t not in KEEPS_D_LOSS and t not in TARGET_TRICKS
               and t not in LOSS_TRICKS]
    if unknown:
        return None, (f"trick {unknown[0]} is not known to keep D's loss (a plug-in or a new "
                      "trick may replace it): not checked")
    owners = [t for t in tricks if t in LOSS_TRICKS]
    if owners:
        return LOSS_TRICKS[owners[0]](dict(tricks[owners[0]] or {}))
    targets = (1.0, 0.0)
    for name, params in tricks.items():
        if name in TARGET_TRICKS:
            targets = TARGET_TRICKS[name](targets, dict(params or {}))
    p = (targets[0] + targets[1]) / 2
    if abs(p - 0.5) < 1e-12:
        return 2 * LN2, "2 ln 2 (BCE, D's targets symmetric about 1/2)"
    return 2 * _binary_entropy(p), f"2 H({p:g}) (BCE, mean target {p:g})"


def d_check(tricks: Mapping[str, Mapping[str, Any]]) -> tuple[float | None, str]:
    """The chance value the `d_at_chance` check compares D's loss with, or None and why it is
    not checked: `d_chance_value`, except for a cell with a trick that holds D's loss at chance
    by design (HOLDS_D_AT_CHANCE), whose loss says nothing about learning."""
    for name, params in tricks.items():
        holds = HOLDS_D_AT_CHANCE.get(name)
        why = holds(dict(params or {})) if holds else None
        if why:
            return None, f"{name}: {why}"
    return d_chance_value(tricks)


def d_at_chance(curve: Iterable, chance: float, how: str = "") -> dict[str, Any] | None:
    """The `d_at_chance` flag on a `d_adv` curve ([[step, value], ...]), or None."""
    points = [(s, v) for s, v in curve if v == v]  # NaN-free
    if len(points) < D_CHANCE_MIN_POINTS:
        return None
    dev = [abs(v - chance) for _, v in points]
    near = [i for i, d in enumerate(dev) if d <= D_CHANCE_TOL]
    if len(near) < D_CHANCE_SHARE * len(points):
        return None
    step = points[near[0]][0]
    typical = sorted(dev)[len(dev) // 2]
    return {"flag": "d_at_chance", "step": int(step),
            "detail": (f"d_adv within {D_CHANCE_TOL:g} of its chance value {chance:.4g}"
                       f"{' = ' + how if how else ''} at {len(near)}/{len(points)} log points "
                       f"(median deviation {typical:.2g}, max {max(dev):.2g})")}


def beats(value: float, values: list[float], direction: str) -> bool:
    """`value` better than the reference's mean by more than AT_CHANCE_Z of its sd."""
    v = [x for x in values if x == x]
    if not v or direction not in ("up", "down") or value != value:
        return False
    mean = sum(v) / len(v)
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    margin = AT_CHANCE_Z * sd
    return value > mean + margin if direction == "up" else value < mean - margin


def at_chance(metrics: Mapping[str, float], chance_rows: list[Mapping[str, Any]],
              headline: Iterable[str], directions: Mapping[str, str],
              step: int = 0) -> dict[str, Any] | None:
    """The `at_chance` flag: a chance reference the cell beats on none of the headline metrics
    both have. `chance_rows`: [{"label", "metrics": {metric: [value per seed]}}]."""
    for row in chance_rows:
        shared = [m for m in headline if m in row["metrics"] and metrics.get(m) is not None
                  and metrics[m] == metrics[m] and m in directions]
        if shared and not any(beats(float(metrics[m]), row["metrics"][m], directions[m])
                              for m in shared):
            parts = ", ".join(f"{m} {metrics[m]:.3g} vs {_mean_sd(row['metrics'][m])}"
                              for m in shared)
            return {"flag": "at_chance", "step": int(step),
                    "detail": f"no better than '{row['label']}' (mean ± sd over seeds) on any "
                              f"headline metric: {parts}"}
    return None


def _mean_sd(values: list[float]) -> str:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return f"{mean:.3g} ± {sd:.2g}"
