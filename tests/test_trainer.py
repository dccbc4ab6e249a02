"""The loop: names no trick, is deterministic, resumes bit-identically, reports divergence."""
import re
from pathlib import Path

import pytest
import torch

from bench.core.config import CellConfig
from bench.train import Trainer
from bench.train.checkpoint import CheckpointError
from bench.trickapi.registry import list_tricks
from tests.tiny import tiny_cell, tiny_trainer, weights

ROOT = Path(__file__).resolve().parent.parent
# The loop and everything that drives it (the registry is the one place that imports tricks).
LOOP_FILES = sorted([str(p.relative_to(ROOT)) for p in (ROOT / "bench" / "train").glob("*.py")]
                    + ["bench/trickapi/trickset.py", "bench/trickapi/losses.py",
                       "bench/schedule/runner.py", "bench/schedule/executor.py",
                       "bench/schedule/units.py"])


def test_training_loop_source_names_no_trick():
    root = Path(__file__).resolve().parent.parent
    for rel in LOOP_FILES:
        source = (root / rel).read_text()
        for name in list_tricks():
            assert not re.search(rf"\b{re.escape(name)}\b", source), f"{rel} names '{name}'"
        assert "import tricks" not in source and "from tricks" not in source


def test_same_seed_gives_identical_curves_and_weights():
    a = tiny_trainer("ring8", ["instance_noise"], steps=6, seed=1)
    a.train()
    b = tiny_trainer("ring8", ["instance_noise"], steps=6, seed=1)
    b.train()
    assert a.curves == b.curves
    for k, v in weights(a.nets.G).items():
        assert torch.equal(v, weights(b.nets.G)[k])
    c = tiny_trainer("ring8", ["instance_noise"], steps=6, seed=2)
    c.train()
    assert c.curves != a.curves


def test_every_loss_term_is_logged_by_name():
    t = tiny_trainer("ring8", ["wgan_gp"], steps=2)
    t.train()
    assert set(t.curves) == {"d_adv", "d_gp", "g_adv"}
    assert [s for s, _ in t.curves["g_adv"]] == [1, 2]


def _interrupted_vs_straight(dataset, tricks, tmp_path):
    straight = tiny_trainer(dataset, tricks, steps=6, seed=5, checkpoint_every=2,
                            workdir=tmp_path / "a")
    assert straight.train() == ("done", "")
    first = tiny_trainer(dataset, tricks, steps=6, seed=5, checkpoint_every=2,
                         workdir=tmp_path / "b")
    assert first.train(stop_after=3)[0] == "interrupted"
    torch.manual_seed(12345)  # a new process would start from other RNG state
    resumed = tiny_trainer(dataset, tricks, steps=6, seed=5, checkpoint_every=2,
                           workdir=tmp_path / "b")
    assert resumed.try_resume() and resumed.step == 3
    assert resumed.train() == ("done", "")
    return straight, resumed


def test_kill_and_resume_ends_bit_identical(tmp_path):
    straight, resumed = _interrupted_vs_straight("ring8", ["instance_noise", "label_smoothing"],
                                                 tmp_path)
    for net in ("G", "D"):
        a, b = weights(getattr(straight.nets, net)), weights(getattr(resumed.nets, net))
        for k in a:
            assert torch.equal(a[k], b[k]), (net, k)
    assert straight.curves == resumed.curves
    assert straight.stream.state_dict() == resumed.stream.state_dict()


def test_resume_is_exact_on_images_with_spectral_norm(tmp_path):
    straight, resumed = _interrupted_vs_straight("digits", ["spectral_norm"], tmp_path)
    a, b = weights(straight.nets.D), weights(resumed.nets.D)
    assert all(torch.equal(a[k], b[k]) for k in a)  # includes the power-iteration vectors


def test_checkpoint_of_another_cell_is_refused(tmp_path):
    t = tiny_trainer("ring8", [], steps=2, checkpoint_every=1, workdir=tmp_path)
    t.train()
    other = tiny_trainer("ring8", [], steps=2, seed=9, workdir=tmp_path)
    with pytest.raises(CheckpointError, match=f"belongs to cell {t.cell.cell_id}, not "):
        other.try_resume()


def test_non_finite_loss_ends_the_cell_as_diverged():
    t = tiny_trainer("ring8", [], steps=10, lr=1e30)
    with torch.no_grad():
        for p in t.nets.D.parameters():
            p.mul_(1e30)
    status, reason = t.train()
    assert status == "diverged"
    assert re.search(r"non-finite loss at step \d+", reason)
    record = t.make_record(status, reason)
    assert record.status == "diverged" and record.step == t.step < 10


def test_cell_id_is_stable_and_ignores_trick_order():
    a = tiny_cell("ring8", ["spectral_norm", "instance_noise"])
    b = tiny_cell("ring8", ["instance_noise", "spectral_norm"])
    assert a.cell_id == b.cell_id and len(a.cell_id) == 16
    assert CellConfig.from_dict(a.to_dict()) == a
    assert tiny_cell("ring8", [], seed=1).cell_id != tiny_cell("ring8", [], seed=2).cell_id
    assert tiny_cell("ring8", [], seed=1).variant_id == tiny_cell("ring8", [], seed=2).variant_id


def test_cell_id_is_the_same_in_another_process():
    import subprocess
    import sys

    cell = tiny_cell("digits", [("label_smoothing", {"real": 0.8})])
    code = ("from tests.tiny import tiny_cell; "
            "print(tiny_cell('digits', [('label_smoothing', {'real': 0.8})]).cell_id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, check=True).stdout.strip()
    assert out == cell.cell_id


def test_sampling_uses_eval_mode_and_its_own_generator():
    t = tiny_trainer("digits", [], steps=1)
    g = torch.Generator().manual_seed(0)
    x1 = t.sample(5, g)
    x2 = t.sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(x1, x2) and x1.shape == (5, 1, 16, 16)
    assert t.nets.G.training


def _probe_calls():
    calls = []

    def probe(trainer):
        calls.append(trainer.step)
        torch.randn(100)  # consumes RNG: the trainer must restore it
        return {"g_norm": float(sum(p.detach().norm() for p in trainer.nets.G.parameters()))}

    return probe, calls


def test_metric_curves_do_not_change_training_and_resume_with_it(tmp_path):
    plain = tiny_trainer("ring8", ["instance_noise"], steps=6, seed=4)
    plain.train()
    probed = tiny_trainer("ring8", ["instance_noise"], steps=6, seed=4, checkpoint_every=2,
                          workdir=tmp_path / "a")
    probe, calls = _probe_calls()
    probed.set_probe(probe, 2)
    probed.train()
    assert calls == [2, 4]  # the final state is scored by the cell's evaluation instead
    assert [s for s, _ in probed.curves["eval_g_norm"]] == [2, 4]
    assert all(torch.equal(a, b) for a, b in zip(weights(plain.nets.G).values(),
                                                  weights(probed.nets.G).values()))
    assert {k: v for k, v in probed.curves.items() if not k.startswith("eval_")} == plain.curves

    first = tiny_trainer("ring8", ["instance_noise"], steps=6, seed=4, checkpoint_every=2,
                         workdir=tmp_path / "b")
    first.set_probe(_probe_calls()[0], 2)
    first.train(stop_after=3)
    resumed = tiny_trainer("ring8", ["instance_noise"], steps=6, seed=4, checkpoint_every=2,
                           workdir=tmp_path / "b")
    resumed.set_probe(_probe_calls()[0], 2)
    resumed.try_resume()
    resumed.train()
    assert resumed.curves == probed.curves


def test_trick_version_enters_the_id_only_when_bumped_and_is_enforced():
    import pytest

    from bench.core.config import TrickSpec
    from bench.schedule.grid import full_spec
    from bench.trickapi.trick import TrickError

    base = tiny_cell("ring8", [])
    v1 = base.replace(tricks=(TrickSpec.of("label_smoothing", version=1),))
    assert "version" not in v1.to_dict()["tricks"][0]  # version 1 leaves ids as they were
    assert full_spec("path_length").version == 3
    pinned_old = base.replace(tricks=(TrickSpec.of("path_length", version=1),))
    pinned_new = base.replace(tricks=(TrickSpec.of("path_length", version=2),))
    assert pinned_old.cell_id != pinned_new.cell_id
    assert CellConfig.from_dict(pinned_new.to_dict()) == pinned_new
    with pytest.raises(TrickError, match="made with path_length version 1"):
        Trainer(pinned_old, device="cpu", progress=False)
