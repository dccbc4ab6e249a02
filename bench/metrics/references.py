"""Reference rows: where chance and the ceiling lie under a dataset's metric protocol.

A reference is a sampler that is not a GAN, scored by `evaluate_samples` exactly as a cell is
(same EvalSpec: sample count, metric functions, extractor), once per seed in REFERENCE_SEEDS, so
each reference row has a mean and a standard deviation. Roles:

- "chance": a sampler with no structure that a GAN must beat to have learned anything.
  2-D mixtures: `uniform_ring_3s` / `uniform_ring_5s` (ring sets: uniform angle, radius = the
  ring's radius + Gaussian noise of 3 or 5 sigma; ring8: sd 0.03, 0.05), `uniform_box` (other
  mixtures, e.g. grid25: uniform over the square the mode centres span), `gaussian` (an isotropic
  Gaussian with the mixture's mean and per-axis standard deviation), `collapsed` (every sample exactly
  at the mixture's mean: a G that has not left its start, as an untrained MLP G's near-zero
  output has not; on grid25 the mean is the centre mode, so this point mass covers one mode,
  strictly, with every sample high quality, and a cell collapsed there must not count as
  having learned). Images: `shuffled_train`
  (train images with their pixels permuted, a fresh permutation per image: the right pixel
  histogram, no structure).
- "degraded": images only, `blurred_train` (train images through a Gaussian blur, sigma 1 px).
- "ceiling": fresh samples of the true data: `true_data` (2-D: the mixture itself), images:
  `real_train` (train images vs the test reference: real vs real).

`score_references(dataset, spec)` returns a JSON-able dict (rows with per-seed values and the
protocol they were scored under, seed removed); `python -m bench.metrics.references --dataset
NAME --out FILE` writes it (the report runs this in a child process, so it imports no torch
itself; see bench/report/references.py).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from bench.core.chance import REFERENCE_SEEDS, REFERENCES_VERSION

from .errors import MetricError
from .evaluate import evaluate_samples
from .protocol import EvalSpec

RING_SD_SIGMAS = (3.0, 5.0)
BLUR_SIGMA_PX = 1.0

Sampler = Callable[[int, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Reference:
    name: str
    role: str  # "chance" | "degraded" | "ceiling"
    label: str  # what tables print
    sampler: Sampler


def _centres(dataset) -> torch.Tensor:
    return dataset.centers.detach().to("cpu", torch.float64)


def ring_radius(dataset) -> float | None:
    """The common radius of the mode centres about their mean, or None when they are not a ring."""
    c = _centres(dataset)
    if len(c) < 3:
        return None
    r = (c - c.mean(0)).norm(dim=1)
    return float(r.mean()) if float(r.max() - r.min()) <= 1e-6 * max(1.0, float(r.mean())) else None


def _uniform_ring(dataset, sd: float) -> Sampler:
    c = _centres(dataset)
    centre, radius = c.mean(0), ring_radius(dataset)

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        angle = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
        r = radius + sd * torch.randn(n, generator=gen, dtype=torch.float64)
        return (centre + torch.stack([r * angle.cos(), r * angle.sin()], 1)).float()
    return sample


def _uniform_box(dataset) -> Sampler:
    c = _centres(dataset)
    lo, hi = c.min(0).values, c.max(0).values

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(n, 2, generator=gen, dtype=torch.float64)).float()
    return sample


def gaussian_moments(dataset) -> tuple[torch.Tensor, float]:
    """Mean and isotropic sd of the mixture: sd^2 = mean over axes of (centre variance + sigma^2)."""
    c = _centres(dataset)
    var = c.var(0, unbiased=False).mean() + float(dataset.sigma) ** 2
    return c.mean(0), float(var.sqrt())


def _gaussian(dataset) -> Sampler:
    mean, sd = gaussian_moments(dataset)

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        return (mean + sd * torch.randn(n, 2, generator=gen, dtype=torch.float64)).float()
    return sample


def _collapsed(dataset) -> Sampler:
    mean = _centres(dataset).mean(0)

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        return mean.expand(n, 2).float().clone()
    return sample


def _true_mixture(dataset) -> Sampler:
    c, sigma = _centres(dataset), float(dataset.sigma)

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        k = torch.randint(len(c), (n,), generator=gen)
        return (c[k] + sigma * torch.randn(n, 2, generator=gen, dtype=torch.float64)).float()
    return sample


def _train_images(dataset, transform=None) -> Sampler:
    train = dataset.train

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        x = train[torch.randint(len(train), (n,), generator=gen)]
        return transform(x, gen) if transform else x
    return sample


def _shuffle_pixels(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b, c = x.shape[:2]
    flat = x.reshape(b, c, -1)
    order = torch.argsort(torch.rand(b, flat.shape[2], generator=gen), dim=1)
    return flat.gather(2, order[:, None, :].expand_as(flat)).reshape(x.shape)


def _blur(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    half = max(1, math.ceil(3 * BLUR_SIGMA_PX))
    t = torch.arange(-half, half + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * BLUR_SIGMA_PX ** 2))
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (half, half, half, half), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)


def references_for(dataset) -> list[Reference]:
    """The reference samplers that apply to `dataset`, chance first, the ceiling last."""
    if dataset.kind == "2d":
        sigma = float(dataset.sigma)
        out = []
        if ring_radius(dataset) is not None:
            out += [Reference(f"uniform_ring_{k:g}s", "chance",
                              f"chance: uniform ring (radial sd {k:g}σ = {k * sigma:g})",
                              _uniform_ring(dataset, k * sigma)) for k in RING_SD_SIGMAS]
        else:
            out.append(Reference("uniform_box", "chance", "chance: uniform over the modes' square",
                                 _uniform_box(dataset)))
        out.append(Reference("gaussian", "chance", "chance: Gaussian with the data's mean and sd",
                             _gaussian(dataset)))
        out.append(Reference("collapsed", "chance",
                             "chance: all samples at the data's mean (a G stuck at its start)",
                             _collapsed(dataset)))
        out.append(Reference("true_data", "ceiling", "true data (fresh samples)",
                             _true_mixture(dataset)))
        return out
    if dataset.kind == "image":
        return [Reference("shuffled_train", "chance", "chance: train images, pixels shuffled",
                          _train_images(dataset, _shuffle_pixels)),
                Reference("blurred_train", "degraded",
                          f"degraded: train images blurred (σ {BLUR_SIGMA_PX:g} px)",
                          _train_images(dataset, _blur)),
                Reference("real_train", "ceiling", "real vs real (train images)",
                          _train_images(dataset))]
    raise MetricError(f"no reference samplers for dataset kind {dataset.kind!r}")


def score_references(dataset, spec: EvalSpec, seeds=REFERENCE_SEEDS, device="cpu") -> dict:
    """Every reference of `dataset` scored by `evaluate_samples` under `spec` at each seed:
    {"dataset", "version", "seeds", "protocol" (seed removed), "rows": [{"name", "role",
    "label", "metrics": {metric: [value per seed]}}]}."""
    rows, protocol = [], None
    for ref in references_for(dataset):
        values: dict[str, list[float]] = {}
        for seed in seeds:
            metrics, proto = evaluate_samples(ref.sampler, dataset, _with_seed(spec, seed), device)
            proto = {k: v for k, v in proto.items() if k != "seed"}
            if protocol is None:
                protocol = proto
            for k, v in metrics.items():
                values.setdefault(k, []).append(float(v))
        rows.append({"name": ref.name, "role": ref.role, "label": ref.label, "metrics": values})
    return {"dataset": dataset.name, "version": REFERENCES_VERSION, "seeds": list(seeds),
            "protocol": protocol or {}, "rows": rows}


def _with_seed(spec: EvalSpec, seed: int) -> EvalSpec:
    from dataclasses import replace

    return replace(spec, seed=int(seed))


def spec_from_protocol(protocol: dict) -> EvalSpec:
    """The EvalSpec a stored protocol was scored with (the fields a reference needs)."""
    if protocol.get("kind") == "2d":
        return EvalSpec(metrics=("modes",))
    kw = {"metrics": tuple(protocol.get("metrics") or ("fid", "kid", "prc", "dc", "modes"))}
    if protocol.get("extractor"):
        kw["extractor"] = protocol["extractor"]
    if protocol.get("num_generated"):
        kw["num_samples"] = int(protocol["num_generated"])
    if protocol.get("num_reference"):
        kw["ref_samples"] = int(protocol["num_reference"])
    if protocol.get("mode_samples") and protocol.get("mode_samples") != protocol.get("num_generated"):
        kw["stacked_samples"] = int(protocol["mode_samples"])
    return EvalSpec(**kw)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.metrics.references",
                                description="Score the chance and true-data reference samplers "
                                            "of a dataset by its metric protocol (JSON).")
    p.add_argument("--dataset", required=True)
    p.add_argument("--protocol", help="a record's metric protocol as JSON (default: the suite's "
                                      "default for the dataset)")
    p.add_argument("--resolution", type=int, help="image size, where the dataset takes one")
    p.add_argument("--seeds", type=int, default=len(REFERENCE_SEEDS))
    p.add_argument("--out", help="file to write (default: stdout)")
    args = p.parse_args(argv)
    from bench.data import DataError, load_dataset

    torch.set_num_threads(1)
    try:
        if args.seeds < 2:
            raise MetricError(f"--seeds must be >= 2 (a reference row needs a spread), got {args.seeds}")
        dataset = load_dataset(args.dataset, resolution=args.resolution)
        protocol = json.loads(args.protocol) if args.protocol else {"kind": dataset.kind}
        result = score_references(dataset, spec_from_protocol(protocol), range(args.seeds))
    except (DataError, MetricError, ValueError) as e:
        print(f"references: {e}", file=sys.stderr)
        return 2
    text = json.dumps(result, sort_keys=True)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
