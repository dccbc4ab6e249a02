"""Grid files (TOML) -> cells and memberships. A grid reads like a diff over the harness defaults:
it lists only what it changes; an unknown key or a value of the wrong type is a one-line error
naming the file, the key, the value and what is allowed.

```toml
description = "what this grid is for"
seeds = [0, 1, 2]
design = "add-one"          # or several: ["add-one", "leave-one-out", "pairs"] (`ganbench designs`)
tricks = ["*"]              # name patterns; "*" = the built-in tricks (plug-ins join when named
include_plugins = false     #   exactly, or with include_plugins = true)
cells = [["spectral_norm", "ttur"], ["wgan_gp"]]   # the trick sets of design "cells"
fraction_resolution = 4     # fractional-factorial: minimum resolution (>= 3)
tune_seeds = [100, 101]     # held-out tuning (bench/schedule/tuning.py): each variant's [tune] setting is
                            # chosen on these seeds, then trained and reported on `seeds`, which
                            # must not overlap them. Without it, [tune] lr trains every variant
                            # at each lr on `seeds` (the optimistic same-seed view)
budget = "steps"            # "evals": a trick costing k network updates per step (relative to
                            # the baseline; Trick.step_cost) trains steps / k steps: equal compute;
                            # "time": steps / its calibrated time ratio (bench/schedule/step_costs.py)

[params]                    # trick params; a list is a sweep axis (each point its own variant)
"historical_averaging.weight" = [0.1, 0.3]

[tune]                      # every variant at each of these Adam lrs, same seeds (best-LR view)
lr = [1e-4, 2e-4, 5e-4, 1e-3]
"unrolled.k" = [3, 5]       # with tune_seeds only: a trick param tuned like the lr

[[data]]                    # one table per dataset
name = "ring8"
resolution = 16             # images only: the side in pixels the data is resized to
steps = 2000                # steps, batch_size and lr may be lists too: sweep axes
batch_size = 256
lr = 1e-3                   # both nets' Adam lr (betas stay 0.5, 0.999)
g_lr = 1e-3                 # optional: G's own lr, overriding lr; not with an lr sweep or
d_lr = 1e-4                 #   [tune] lr (likewise d_lr, D's own)
seeds = [0, 1, 2]           # optional per-dataset override (also tune_seeds)
tune_metric = "reverse_kl"  # optional: what the tuning seeds choose on (default: reverse_kl on
                            # 2-D data, fid on images)
tune_lr = [1e-4, 2e-4]      # optional: this table's [tune] lr
primary = "reverse_kl"      # optional: the pre-registered metric of this dataset; the report
                            #   tests only its Δs (Holm within the dataset), the rest secondary
tricks = ["*"]              # optional per-dataset override
params = { "wgan_gp.setting" = "toy" }  # optional: this dataset's trick params, over [params]
                            #   (a trick's authors' setting for this kind of data)
exclude = ["minibatch_*"]   # optional: patterns to leave out (say why in a comment)
width = 128                 # optional NetConfig overrides: width, z_dim, depth (hidden layers),
z_dim = 64                  #   activation ("default" or "tanh", 2-D only), init ("normal"
depth = 3                   #   N(0, 0.02) or "orthogonal" gain 1.4)
activation = "tanh"
init = "orthogonal"
arch = "pacgan"             # optional: a named 2-D architecture instead of the MLP ("pacgan":
                            #   PacGAN's G 4x400 ReLU+BN, D 3x200 maxout x5; bench/nets/pacgan.py;
                            #   width/depth/activation must stay unset)
beta1 = 0.8                 # optional: both nets' Adam beta1 (default 0.5)
log_every = 50              # optional: loss curves averaged over N steps a point
checkpoint_every = 500      # optional: checkpoint every N steps (0: only when the run stops)
stop_on = "hard"            # optional: end a cell early on a hard failure flag (core/flags.py)
g_loss = "minimax"          # optional: G's baseline loss, "non_saturating" (default) or "minimax"
                            # (bench/trickapi/losses.py); tricks that replace the loss ignore it

[published]                 # optional: the published table these rows reproduce (bench/published/);
table = "pacgan-t1"         #   the report sets them side by side (tables/published-<grid>.*).
rows = { baseline = "GAN", packing = "PacGAN2" }   # variant (as the report names it) -> paper row
datasets = { ring8-pacgan = "ring" }                # dataset -> the table's column
metrics = ["modes", "high_quality"]                 # optional: the suite's names (default: all)
```

Every design also trains the baseline. Cells whose tricks do not apply to the data kind or may
not run together are kept: the runner stores them as `not-applicable` / `conflict` with the
reason, so tables show them. `load_grid` also returns the memberships (which design, sweep point
and tuned lr asked for each cell) and the grid spec that `ganbench run` stores with
`Store.put_grid`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.core.config import CellConfig, ConfigError
from bench.schedule.grid.cells import GridCells
from bench.schedule.grid.checks import Checker, read_toml
from bench.schedule.grid.data import parse_data_table
from bench.schedule.grid.published import published_mapping
from bench.schedule.grid.settings import parse_settings

# Re-exported: callers import these from here. The key sets are the schema that the grid-keys
# page (bench/cli/reference.py) lists beside this module's docstring.
from bench.core.grid_files import GRID_DIR, resolve_grid_path  # noqa: F401 (GRID_DIR)
from bench.schedule.grid.budget import (BUDGETS, evals_steps, step_cost,  # noqa: F401
                                        time_steps)
from bench.schedule.grid.cells import full_spec  # noqa: F401
from bench.schedule.grid.data import DATA_KEYS, SWEEPABLE  # noqa: F401
from bench.schedule.grid.settings import TOP_KEYS, TUNE_KEYS  # noqa: F401

# The parts, in the order a file goes through them: grid/checks.py reads it and checks values;
# grid/settings.py the top level; grid/data.py each [[data]] table; grid/cells.py the cells,
# memberships, spec and tuning plans a table asks for (grid/budget.py: the steps under `budget`).


@dataclass(frozen=True)
class Grid:
    name: str
    description: str
    cells: tuple[CellConfig, ...]
    members: tuple[dict, ...] = ()  # Store.put_grid members, in grid order
    spec: dict = field(default_factory=dict)  # Store.put_grid spec
    # held-out tuning (bench/schedule/tuning.py): `cells` holds stage 1 (tuning seeds) and the untuned
    # cells; each plan's evaluation cells are resolved from the stored stage-1 records
    plans: tuple = ()


def load_grid(name_or_path: str, edit=None) -> Grid:
    """The grid a preset name or TOML path describes. Every error is one line naming the file
    (and, where the check knows it, the table and key). `edit(doc) -> doc` changes the parsed
    file before it is read (`compare` keeps a grid's protocol but names its own tricks)."""
    from bench.data import DataError
    from bench.trickapi.trick import TrickError

    path = resolve_grid_path(name_or_path)
    try:
        return _load_grid(path, edit)
    except (ConfigError, TrickError, DataError) as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        # raised below the grid's own checks (a trick's params, a cell's config): same type,
        # so callers that tell them apart still can
        raise type(exc)(f"{path}: {exc}") from None


def _load_grid(path: Path, edit=None) -> Grid:
    doc = read_toml(path)
    if edit is not None:
        doc = edit(doc)
    check = Checker(path)
    settings = parse_settings(doc, check)
    built = GridCells(path, settings)
    seen: dict[str, int] = {}  # dataset -> its table's number: one table a dataset
    for i, table in enumerate(settings.tables):
        # each table is checked, then built, before the next is read: which error a file
        # with several is reported with stays the same
        built.add_table(parse_data_table(table, i, settings, check, seen))
    cells, members, spec, plans = built.finish()
    published = published_mapping(doc, check, members)  # names the variants: after the cells
    if published is not None:
        spec["published"] = published  # the report's, not a cell's: no id changes
    return Grid(path.stem, settings.description, cells, members, spec, plans)
