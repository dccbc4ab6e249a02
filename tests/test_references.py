"""Reference samplers (bench/metrics/references.py) and `modes_strict`: rows equal scores
computed by hand from the same draws, structureless samplers score low on modes_strict and the
true mixture scores K."""
import math

import numpy as np
import pytest
import torch

from bench.data import load_dataset
from bench.metrics.evaluate import NUM_SAMPLES_2D
from bench.metrics.modes_strict import STRICT_SHARE, strict_mode_count, strict_threshold
from bench.metrics.protocol import EvalSpec
from bench.metrics.references import (_blur, _shuffle_pixels, gaussian_moments, main,
                                      references_for, score_references)

SPEC_2D = EvalSpec(metrics=("modes",))


def hand_scores(points: np.ndarray, centres: np.ndarray, sigma: float) -> dict:
    """The PacGAN/VEEGAN rule written out in numpy: nearest centre, high quality within 3 sigma,
    a mode covered by one high-quality sample, KL of the high-quality histogram to uniform."""
    d = np.sqrt(((points[:, None, :] - centres[None]) ** 2).sum(-1))
    nearest, hq = d.argmin(1), d.min(1) <= 3 * sigma
    counts = np.bincount(nearest[hq], minlength=len(centres))
    q = counts[counts > 0] / counts.sum()
    k = len(centres)
    return {"modes": int((counts > 0).sum()), "high_quality": float(hq.mean()),
            "reverse_kl": float((q * np.log(q * k)).sum()),
            "modes_strict": int((counts >= len(points) / (4 * k)).sum())}


def ring_draws(seed: int, sd: float, n: int = NUM_SAMPLES_2D, batch: int = 256) -> np.ndarray:
    """What the uniform-ring sampler draws under evaluate_samples' batching, by hand."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        b = min(batch, n - start)
        angle = 2 * math.pi * torch.rand(b, generator=gen, dtype=torch.float64)
        r = 1.0 + sd * torch.randn(b, generator=gen, dtype=torch.float64)
        out.append(torch.stack([r * angle.cos(), r * angle.sin()], 1).float().double().numpy())
    return np.concatenate(out)


def test_reference_rows_equal_hand_computed_scores():
    ring8 = load_dataset("ring8")
    got = score_references(ring8, SPEC_2D, seeds=(3, 7))
    row = next(r for r in got["rows"] if r["name"] == "uniform_ring_3s")
    assert row["role"] == "chance" and "0.03" in row["label"]
    centres = ring8.centers.double().numpy()
    for i, seed in enumerate((3, 7)):
        want = hand_scores(ring_draws(seed, 0.03), centres, 0.01)
        for m, v in want.items():
            assert row["metrics"][m][i] == pytest.approx(v, abs=1e-9), (m, seed)
    assert got["seeds"] == [3, 7] and "seed" not in got["protocol"]
    assert got["protocol"]["num_generated"] == NUM_SAMPLES_2D


@pytest.mark.parametrize("name,chance", [("ring8", ("uniform_ring_3s", "uniform_ring_5s", "gaussian")),
                                         ("grid25", ("uniform_box", "gaussian"))])
def test_structureless_samplers_cover_modes_but_not_strictly(name, chance):
    data = load_dataset(name)
    rows = {r["name"]: r for r in score_references(data, SPEC_2D, seeds=(0, 1, 2))["rows"]}
    assert tuple(n for n, r in rows.items() if r["role"] == "chance") == chance + ("collapsed",)
    k = data.num_modes
    for n in chance:
        assert max(rows[n]["metrics"]["modes_strict"]) == 0, n
        assert max(rows[n]["metrics"]["high_quality"]) < 0.06, n
    # the papers' count gives the structureless samplers most modes (ring: all of them)
    first = rows[chance[0]]["metrics"]["modes"]
    assert min(first) >= (k if name == "ring8" else 0.6 * k)
    true = rows["true_data"]
    assert true["role"] == "ceiling"
    assert true["metrics"]["modes_strict"] == [k] * 3 and min(true["metrics"]["high_quality"]) > 0.98


@pytest.mark.parametrize("name,modes", [("ring8", 0), ("grid25", 1)])
def test_the_collapsed_sampler_covers_at_most_the_mode_at_the_mean(name, modes):
    """A G stuck at its start puts everything near the data's mean: grid25's centre mode, none
    of ring8's. A cell that scores like this has not learned, even with one strict mode."""
    data = load_dataset(name)
    row = next(r for r in score_references(data, SPEC_2D, seeds=(0, 1))["rows"]
               if r["name"] == "collapsed")
    assert row["role"] == "chance"
    assert row["metrics"]["modes"] == [modes] * 2 and row["metrics"]["modes_strict"] == [modes] * 2
    assert row["metrics"]["reverse_kl"][0] == pytest.approx(math.log(data.num_modes), abs=0.01)


def test_strict_threshold_is_a_quarter_of_the_fair_share():
    assert STRICT_SHARE == 0.25 and strict_threshold(2500, 8) == pytest.approx(78.125)
    counts = torch.tensor([79, 78, 0, 300, 1, 79, 2500, 78])
    assert strict_mode_count(counts, 2500) == 4


def test_gaussian_matches_the_mixture_moments():
    ring8 = load_dataset("ring8")
    mean, sd = gaussian_moments(ring8)
    assert torch.allclose(mean, torch.zeros(2, dtype=torch.float64), atol=1e-7)
    assert sd == pytest.approx(math.sqrt(0.5 + 0.01 ** 2))  # unit circle: var 1/2 per axis


def test_image_degradations():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8, generator=gen) * 2 - 1
    y = _shuffle_pixels(x, gen)
    assert y.shape == x.shape and not torch.equal(x, y)
    assert torch.equal(y.flatten(2).sort(2).values, x.flatten(2).sort(2).values)
    flat = torch.full((1, 1, 8, 8), 0.5)
    assert torch.allclose(_blur(flat, gen), flat, atol=1e-6)  # a blur keeps a constant image
    assert _blur(x, gen).std() < x.std()


def test_image_references_listed_in_order():
    class Fake:
        kind = "image"
        train = torch.zeros(3, 1, 4, 4)
    assert [r.role for r in references_for(Fake())] == ["chance", "degraded", "ceiling"]


def test_cli_errors_are_one_line(capsys):
    assert main(["--dataset", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("references: ")
    assert main(["--dataset", "ring8", "--seeds", "1"]) == 2


def test_a_g_stuck_at_grids_centre_is_at_chance_and_a_learning_one_is_not():
    """smoke's grid25 baseline after 20 steps (the store's numbers): one mode, strictly, near
    the data's mean. Only the `collapsed` row catches it: it beats the square and the Gaussian
    on modes_strict (1 vs 0) and high quality."""
    from bench.core.chance import at_chance
    from bench.core.metric_directions import METRIC_DIRECTIONS

    rows = score_references(load_dataset("grid25"), SPEC_2D, seeds=(0, 1, 2))["rows"]
    chance = [r for r in rows if r["role"] == "chance"]
    headline = ["modes", "high_quality", "reverse_kl", "modes_strict"]
    stuck = {"modes": 1, "high_quality": 0.0156, "reverse_kl": 3.22, "modes_strict": 1}
    flag = at_chance(stuck, chance, headline, METRIC_DIRECTIONS)
    assert flag and "data's mean" in flag["detail"]
    others = [r for r in chance if r["name"] != "collapsed"]
    assert at_chance(stuck, others, headline, METRIC_DIRECTIONS) is None
    learning = {"modes": 20, "high_quality": 0.3, "reverse_kl": 0.4, "modes_strict": 6}
    assert at_chance(learning, chance, headline, METRIC_DIRECTIONS) is None
