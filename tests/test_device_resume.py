"""Resume and re-scoring on the device under test ($GANBENCH_TEST_DEVICE, default cpu), through
the same code a GPU runs: checkpoints load onto the CPU, nets / optimizer / trick state move to
the cell's device, each RNG state goes back to its own generator, and the record says whether
deterministic algorithms were enforced."""
import random
import warnings

import numpy as np
import pytest
import torch

from bench.train import checkpoint
from bench.train.runtime import rng_state, set_rng_state, watch_nondeterminism
from tests.tiny import tiny_trainer, weights

TRICKS = ["historical_averaging", "instance_noise"]  # trick state + a per-step random draw


def tensors(obj):
    """Every tensor inside nested dicts, lists and tuples."""
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from tensors(v)


def test_interrupted_run_resumes_on_the_device_and_ends_identical(device, tmp_path):
    straight = tiny_trainer(tricks=TRICKS, steps=6, seed=3, device=device)
    straight.train()
    first = tiny_trainer(tricks=TRICKS, steps=6, seed=3, checkpoint_every=3, workdir=tmp_path,
                         device=device)
    assert first.train(stop_after=3)[0] == "interrupted"

    state = checkpoint.load(first.checkpoint_path())
    on = {t.device.type for t in tensors(state)}
    assert on == {"cpu"}, f"checkpoint tensors came back on {on}"

    resumed = tiny_trainer(tricks=TRICKS, steps=6, seed=3, checkpoint_every=3,
                           workdir=tmp_path, device=device)
    assert resumed.try_resume() and resumed.step == 3
    # everything the loop touches is on the cell's device; the CPU RNG state is a CPU tensor
    for net in (resumed.nets.G, resumed.nets.D):
        assert {t.device for t in net.state_dict().values() if torch.is_tensor(t)} == {device}
    for opt in (resumed.g_opt, resumed.d_opt):
        assert {t.device for s in opt.state.values() for t in s.values()
                if torch.is_tensor(t) and t.dim() > 0} == {device}
    assert {t.device for t in tensors(resumed.tricks.state_dict())} == {device}
    assert torch.get_rng_state().device.type == "cpu"

    assert resumed.train() == ("done", "")
    for net in ("G", "D"):
        a, b = weights(getattr(straight.nets, net)), weights(getattr(resumed.nets, net))
        assert all(torch.equal(a[k], b[k]) for k in a), net
    assert straight.curves == resumed.curves


def test_rng_states_round_trip_through_a_checkpoint(device, tmp_path):
    torch.manual_seed(11)
    random.seed(11)
    np.random.seed(11)
    path = tmp_path / "rng.pt"
    checkpoint.save_atomic({"rng": rng_state(device)}, path)

    def draws():
        return (random.random(), float(np.random.rand()), torch.rand(4).tolist(),
                torch.rand(4, device=device).tolist())

    expected = draws()
    draws()  # move every generator on
    loaded = checkpoint.load(path)["rng"]
    assert all(t.device.type == "cpu" for t in tensors(loaded))
    set_rng_state(loaded, device)
    assert draws() == expected


def test_rescoring_samples_what_training_ended_with(device, tmp_path):
    """`ganbench eval` rebuilds the trainer from the final checkpoint: its samples must be the
    ones the trained G gives (nets, trick state and step-derived state all restored)."""
    done = tiny_trainer(tricks=TRICKS, steps=4, seed=2, workdir=tmp_path, device=device)
    assert done.train() == ("done", "")
    again = tiny_trainer(tricks=TRICKS, steps=4, seed=2, workdir=tmp_path, device=device)
    assert again.try_resume() and again.step == again.steps

    def sample(trainer):
        return trainer.sample(64, torch.Generator(device=device).manual_seed(0))

    assert torch.equal(sample(done), sample(again))


def test_record_says_whether_deterministic_algorithms_were_enforced(device):
    trainer = tiny_trainer(steps=2, device=device)
    trainer.train()
    runtime = trainer.make_record("done").runtime
    assert runtime["device"] == str(device) and runtime["deterministic_algorithms"] is True
    # CPU kernels are deterministic outright; CUDA only warns, and the record lists the ops
    assert runtime["deterministic_warn_only"] is (device.type == "cuda")
    assert isinstance(runtime["nondeterministic_ops"], list)
    if device.type == "cpu":
        assert runtime["nondeterministic_ops"] == []


def test_ops_that_warned_before_a_checkpoint_stay_in_the_resumed_cells_record(tmp_path):
    first = tiny_trainer(steps=4, checkpoint_every=2, workdir=tmp_path)
    first.nondeterministic_ops.add("scatter_add_cuda_kernel")  # as a CUDA process would find
    assert first.train(stop_after=2)[0] == "interrupted"
    resumed = tiny_trainer(steps=4, checkpoint_every=2, workdir=tmp_path)
    assert resumed.try_resume() and resumed.train() == ("done", "")
    ops = resumed.make_record("done").runtime["nondeterministic_ops"]
    assert ops == ["scatter_add_cuda_kernel"]


def test_nondeterministic_op_warnings_are_collected_and_others_pass_through():
    found: set[str] = set()
    with pytest.warns(UserWarning, match="unrelated"):
        with watch_nondeterminism(found):
            for _ in range(3):
                warnings.warn("scatter_add_cuda_kernel does not have a deterministic "
                              "implementation, but you set 'torch.use_deterministic_algorithms("
                              "True, warn_only=True)'.")
            warnings.warn("unrelated")
    assert found == {"scatter_add_cuda_kernel"}


@pytest.mark.cuda
def test_a_real_nondeterministic_cuda_op_is_recorded():
    from bench.train.runtime import seed_everything

    dev = torch.device("cuda")
    seed_everything(0, dev)
    found: set[str] = set()
    x = torch.rand(1, 1, 4, 4, device=dev, requires_grad=True)
    with watch_nondeterminism(found):
        torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear").sum().backward()
    assert any("upsample_bilinear2d" in op for op in found), found


@pytest.mark.cuda
def test_a_cuda_checkpoint_mapped_back_to_the_gpu_still_restores_the_cpu_rng(tmp_path):
    """The bug of issue 8: a loader that maps everything to CUDA hands the CPU RNG a CUDA
    tensor. set_rng_state puts each state back on its own device whatever it is given."""
    dev = torch.device("cuda")
    path = tmp_path / "rng.pt"
    checkpoint.save_atomic({"rng": rng_state(dev)}, path)
    expected = torch.rand(3).tolist(), torch.rand(3, device=dev).tolist()
    state = torch.load(path, map_location="cuda", weights_only=True)["rng"]
    set_rng_state(state, dev)
    assert (torch.rand(3).tolist(), torch.rand(3, device=dev).tolist()) == expected
