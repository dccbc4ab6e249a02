"""Fused training: K cells whose networks share a shape, trained as one vectorised step.

Which cells: 2-D cells (the MLPs and PacGAN's nets) and image cells with the DCGAN-style conv
nets (bench/nets/dcgan.py); labelled (conditional) cells are not fused.

Why: a 2-D cell is a few small matrix products per step, so one cell per process leaves a GPU
idle between kernel launches (one ring8 step took 12.4 ms on an H100, slower than a CPU core).
Training K cells as one batched model turns K x (many tiny kernels) into (many K-times larger
kernels).

Design
------
* **A leading model axis, not vmap.** Every parameter and buffer of the K cells is stacked into
  one tensor [K, ...] (`nets.StackedNet`) and a forward pass interprets the per-cell module tree
  on inputs [K, B, ...]: a linear layer is one `baddbmm`, a (transposed) convolution is one
  convolution with groups = K over the models' channels side by side, activations are
  elementwise, minibatch stddev, batch norm (1-D and 2-D), maxout and packing reduce or reshape
  per model. Chosen over
  `torch.func.stack_module_state` + `functional_call` + `vmap` because (1) gradient penalties
  need `torch.autograd.grad` of D's output w.r.t. its input, which does not run inside vmap, while
  with a model axis the gradient of the sum over all models' outputs is each model's own input
  gradient (the models share no parameters), and second-order unrolling differentiates through
  k Adam steps the same way; (2) batch norm's running statistics are plain stacked buffers that
  the fused forward updates in place, per model, with no vmap in-place restrictions; (3) it is
  plain PyTorch (no functorch batching rules) and on the CPU one bmm is as fast as vmap's.
  Layers without a fused form (spectral norm's parametrization, dropout, attention, StyleGAN's
  generator) are refused with their name, never approximated; `fused_layer(cls)` adds a form.
* **The cells are built by the ordinary Trainer.** Each cell's `Trainer` is constructed (and
  resumed from its checkpoint) as for a single run, so initialisation, every trick's `build`,
  optimizer settings (`optimizer` hook: wgan_gp's Adam, TTUR), the data stream and the loss log
  are exactly a single cell's. The engine stacks them, trains, and writes each cell's state back
  into its Trainer (nets, Adam moments, stream position, loss log, step): records, checkpoints,
  sampling and scoring then go through the Trainer unchanged, and a checkpoint written by the
  engine resumes in a single-cell Trainer and vice versa.
* **Per-cell random streams.** A cell alone draws its latents and every trick's noise from the
  global CPU generator, seeded by `seed_everything(seed)` and advanced by initialisation. Each
  fused cell owns a `torch.Generator` started from that state and draws with the shapes and in
  the order of the single-cell loop (`streams.CellStreams`), so it sees the same numbers; the
  unrolled critic's draws are forked per cell as `torch.random.fork_rng` does. Batches come from
  each cell's own `BatchStream` permutation (one gather for all K). Draws are made on the CPU
  even for a GPU step (threads over cells, pinned copies): the reference 2-D cells are CPU runs.
* **Per-cell optimizers.** `adam.StackedAdam` is torch.optim.Adam's update written with a
  learning rate and betas per model ([K, 1, ...] factors, each computed in double as Adam computes
  its scalars), bit-identical to per-cell Adam on the CPU; lr schedules are evaluated per cell.
* **Tricks.** Hooks that are pure (build, optimizer, lr_scale, d_steps, batch_multiple) run per
  cell through the cell's TrickSet; hooks that compute on tensors have fused forms in
  `tricks.py` (label smoothing, instance noise, WGAN-GP, R1/DRAGAN, D2GAN's loss, unrolled
  first and second order with G's objective "cell" or "value") that read each cell's own params
  (`PER_CELL_PARAMS`: those a group may mix; the scheduler groups cells equal in every other
  param); layer tricks have fused layers in `nets.py` (batch norm, minibatch stddev, packing,
  D2GAN's D pair, minibatch discrimination with its data-dependent init) and `unrolled.py`
  holds the unrolled critic. Any other hook is refused with the reason (`group_refusal`), and
  the caller trains those cells one per process.
* **Divergence.** A cell whose loss goes non-finite ends `diverged` at that update with its state
  as before it (what its Trainer does); the others go on (the models are independent, and the
  gradient of a sum of losses is each model's own).

Equivalence (tests/test_fused_engine.py): in float64, every parameter of a fused cell after 50
steps equals the same cell trained alone to ~1e-12 relative; in float32 to ~1e-7 except scalars
whose gradient is a near-cancellation (D's output bias; a bias followed by batch norm, whose true
gradient is 0 and whose value is rounding noise in both runs): Adam normalises that noise into
lr-sized steps, so those differ at the level of their own noise.
"""
from .engine import ENGINE, FusedTrainer, group_refusal
from .forms import NotFusable, fused_layer
from .streams import CellStreams
from .tricks import supported_tricks

__all__ = ["FusedTrainer", "group_refusal", "NotFusable", "fused_layer", "CellStreams",
           "ENGINE", "supported_tricks"]
