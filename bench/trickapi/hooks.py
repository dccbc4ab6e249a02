"""The hook rules as data (pluggy's hookspecs are the model): for every hook, when the loop calls
it, how the results of several tricks combine, which exclusive slot overriding it claims, and what
a valid result looks like. `TrickSet` (bench/trickapi/trickset.py) applies these rules; the
README's hook table is generated from them (`hook_table.py`, `ganbench tricks --hooks`).

Combine rules:
- chain:   each trick's result is the next trick's input (canonical name order);
- product: the results multiply;
- first:   the one trick that overrides it decides (the hook claims a slot, so there is at most one);
- merge:   dicts are merged; a key returned twice is an error;
- each:    every trick is called; results are ignored (state updates that belong to the trick);
- same:    every trick that overrides it must return the same value (else TrickError).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HookSpec:
    name: str
    combine: str  # chain | product | first | merge | each | same
    slot: str | None  # the exclusive slot that overriding this hook claims
    called: str  # when the loop calls it
    returns: str  # what it must return
    examples: str = ""


HOOK_SPECS: tuple[HookSpec, ...] = (
    HookSpec("build", "chain", None, "once, before training, in (build_order, name) order",
             "`Nets(G, D)` (modified or new)",
             "spectral norm, self-attention, batch norm, dual D, StyleGAN"),
    HookSpec("on_step", "each", None, "before each G step",
             "nothing (update state that is a pure function of the step)",
             "fade-in, annealing"),
    HookSpec("condition", "each", None,
             "labelled data only: with the class labels `y` of every real batch, before G or D "
             "runs on it (G's fakes of that step share them), and with uniformly drawn labels "
             "before G is sampled for scoring",
             "nothing (the trick's modules read the labels)", "class-conditional G and D"),
    HookSpec("d_input", "chain", None, "every batch on its way into D (both phases)",
             "the batch, same shape", "instance noise"),
    HookSpec("targets", "chain", None, "D phase",
             "`(real_t, fake_t)`, same shapes", "label smoothing, label flips"),
    HookSpec("adversarial_loss", "first", "adversarial_loss", "each phase",
             "the scalar loss of `ctx.phase`", "WGAN, relativistic, D2GAN"),
    HookSpec("adversarial_weight", "product", None, "each phase",
             "a finite float >= 0 multiplying the adversarial loss",
             "feature matching in `replace` mode"),
    HookSpec("penalty", "merge", None, "each phase",
             "`{name: scalar tensor}` added to the phase's loss, logged as `<phase>_<name>`",
             "gradient penalties, weight L2, path length"),
    HookSpec("lazy_interval", "same", None, "once per net `\"G\"`/`\"D\"`",
             "1, or the interval N > 1 of a lazy regulariser of that net: its terms come from "
             "`lazy_penalty` every N steps, and the net's Adam lr and betas are corrected by "
             "c = N/(N+1) (lr*c, beta**c) for the whole run",
             "lazy R1, path length (StyleGAN2)"),
    HookSpec("lazy_penalty", "merge", None,
             "at steps that are multiples of `lazy_interval`, after the phase's main update, "
             "on its own minibatch (D: a fresh real batch; G: fresh latents)",
             "`{name: scalar tensor}`, logged as `<phase>_<name>`; the loop multiplies their sum "
             "by the interval and takes a separate optimizer step on it",
             "lazy R1, path length"),
    HookSpec("g_critic", "first", "g_critic", "G phase",
             "the D module (or callable) G is scored against", "unrolled GAN"),
    HookSpec("d_steps", "first", "d_steps", "once",
             "D updates per G update (an integer >= 1)", "WGAN-GP's n_critic"),
    HookSpec("batch_multiple", "first", "batch_multiple", "once",
             "an integer m >= 1: every phase draws m x batch_size real samples and latents "
             "(D's layers see them m at a time)", "packing (PacGAN)"),
    HookSpec("optimizer", "first", "optimizer", "once per net `\"G\"`/`\"D\"`",
             "an `OptimConfig`", "WGAN-GP's Adam(1e-4, (0, .9)), TTUR"),
    HookSpec("lr_scale", "product", "lr_schedule", "every step",
             "a finite float > 0 multiplying the base LR (a pure function of the step)",
             "warmup, decay, cyclic"),
    HookSpec("after_g_step", "each", None, "after each G update",
             "nothing (update state that follows G's weights)", "EMA of G"),
    HookSpec("sampler", "first", "sampler", "whenever G is sampled for scoring (metrics, curves)",
             "the module to sample instead of G (same call signature)", "EMA of G"),
    HookSpec("state_dict", "each", None, "checkpoints",
             "a dict of tensors and plain values (state that is *not* a function of the step)",
             "running means"),
    HookSpec("load_state_dict", "each", None, "resume and re-scoring", "nothing", ""),
)

SPECS: dict[str, HookSpec] = {h.name: h for h in HOOK_SPECS}
HOOKS: tuple[str, ...] = tuple(h.name for h in HOOK_SPECS)
# slot -> the hook whose override claims it
SLOT_HOOKS: dict[str, str] = {h.slot: h.name for h in HOOK_SPECS if h.slot}
