"""What a careless plug-in author sees: every mistake of issue 7 ends in one line naming the
trick (and hook), and a broken plug-in never takes the other tricks down with it."""
import importlib
import sys

import pytest
import torch

from bench.cli import main
import bench.trickapi.registry as reg
from bench.trickapi.registry import (build_tricks, conflict_reasons, create_trick, describe,
                                     register_trick, unregister_trick)
from bench.trickapi.trick import Trick, TrickError, slots_of
from tests.tiny import tiny_trainer


@pytest.fixture
def registered():
    """Register test tricks for one test and remove them afterwards."""
    names = []

    def add(cls):
        register_trick(cls)
        names.append(cls.name)
        return cls

    yield add
    for name in names:
        unregister_trick(name)


def entry_points_returning(monkeypatch, *eps):
    monkeypatch.setattr(reg, "entry_points",
                        lambda group: list(eps) if group == reg.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(reg, "_loaded", False)
    monkeypatch.setattr(reg, "_PLUGIN_ERRORS", [])


class EP:
    def __init__(self, name, value, load):
        self.name, self.value, self._load = name, value, load

    def load(self):
        return self._load()


def test_overriding_the_loss_claims_its_slot_without_declaring_it(registered):
    @registered
    class MyLoss(Trick):
        name = "test_my_loss"

        def adversarial_loss(self, ctx):
            return ctx.d_fake.mean()

    assert MyLoss.slots == () and slots_of(create_trick("test_my_loss")) == ("adversarial_loss",)
    reasons = conflict_reasons([create_trick("test_my_loss"), create_trick("wgan_gp")])
    assert any("both claim the 'adversarial_loss' slot" in r for r in reasons)
    with pytest.raises(TrickError, match="cannot run together"):
        build_tricks([("test_my_loss", {}), ("wgan_gp", {})])


class PerSampleLoss(Trick):
    name = "test_per_sample_loss"

    def adversarial_loss(self, ctx):
        return torch.nn.functional.softplus(-ctx.d_fake)  # forgot .mean()


class MatrixPenalty(Trick):
    name = "test_matrix_penalty"

    def penalty(self, ctx):
        return {"l2": ctx.d_fake ** 2}


class NanWeight(Trick):
    name = "test_nan_weight"

    def adversarial_weight(self, phase):
        return float("nan")


class ShrinkingInput(Trick):
    name = "test_shrinking_input"

    def d_input(self, x, is_real, step):
        return x[:, :1]


class ZeroLr(Trick):
    name = "test_zero_lr"

    def lr_scale(self, step, net):
        return 0.0


class PenaltyList(Trick):
    name = "test_penalty_list"

    def penalty(self, ctx):
        return [ctx.d_fake.mean()]


@pytest.mark.parametrize("cls, hook, problem", [
    (PerSampleLoss, "adversarial_loss", "must be a scalar tensor, got a tensor of shape (16,)"),
    (MatrixPenalty, "penalty", "term 'l2' must be a scalar tensor, got a tensor of shape (16,)"),
    (NanWeight, "adversarial_weight", "must return a finite number >= 0, got float nan"),
    (ShrinkingInput, "d_input", "must return a batch of shape (16, 2), got a tensor of shape"),
    (ZeroLr, "lr_scale", "must return a finite number > 0, got float 0.0"),
    (PenaltyList, "penalty", "must return a dict of named terms"),
])
def test_a_bad_hook_result_is_one_line_naming_trick_and_hook(registered, cls, hook, problem):
    registered(cls)
    trainer = tiny_trainer(tricks=[cls.name], batch_size=16)
    with pytest.raises(TrickError) as exc:
        trainer.train_step()
    text = str(exc.value)
    assert text.startswith(f"trick '{cls.name}' hook '{hook}': ") and problem in text, text
    assert "\n" not in text


def test_a_plugin_whose_import_fails_is_one_line_and_the_rest_still_works(monkeypatch, capsys):
    def fail():
        raise ModuleNotFoundError("No module named 'missing_dep'")

    entry_points_returning(monkeypatch, EP("broken", "broken_plugin", fail))
    code = main(["tricks", "spectral_norm"])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("spectral_norm")
    assert err == ("ganbench: warning: trick plug-in 'broken' (broken_plugin) failed to import: "
                   "ModuleNotFoundError: No module named 'missing_dep'\n")
    assert reg.plugin_errors() == [err[len("ganbench: warning: "):-1]]
    with pytest.raises(TrickError) as exc:  # its tricks are unknown, and the line says why
        create_trick("broken_trick")
    assert "plug-in(s) failed to load" in str(exc.value) and "'broken'" in str(exc.value)


def test_grid_workers_keep_plugin_errors_without_repeating_the_warning(monkeypatch, capsys):
    def fail():
        raise ModuleNotFoundError("No module named 'missing_dep'")

    entry_points_returning(monkeypatch, EP("broken", "broken_plugin", fail))
    monkeypatch.setattr(reg, "_warn_plugins", True)
    reg.quiet_plugin_warnings()  # what each pool worker does first
    reg.load_tricks()
    assert capsys.readouterr().err == ""
    assert len(reg.plugin_errors()) == 1 and "'broken'" in reg.plugin_errors()[0]


def test_a_plugin_module_that_registers_nothing_says_so(monkeypatch, tmp_path):
    (tmp_path / "forgot_decorator.py").write_text(
        "from ganbench import Trick\n"
        "class Forgot(Trick):\n"
        "    name = 'forgot_trick'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_points_returning(monkeypatch, EP("forgot", "forgot_decorator",
                                           lambda: importlib.import_module("forgot_decorator")))
    try:
        assert reg.plugin_errors() == [
            "entry point 'forgot' loaded module 'forgot_decorator' but it registered no trick "
            "(decorate its Trick class with @register_trick)"]
        with pytest.raises(TrickError) as exc:
            create_trick("forgot_trick")
        assert "registered no trick" in str(exc.value)
    finally:
        sys.modules.pop("forgot_decorator", None)


def test_a_plugin_with_a_bad_declaration_or_object_is_one_line(monkeypatch):
    class NoSuchSlot(Trick):
        name = "test_bad_slot"
        slots = ("adversarial_los",)

    entry_points_returning(monkeypatch, EP("badslot", "m:NoSuchSlot", lambda: NoSuchSlot),
                           EP("func", "m:make", lambda: (lambda: None)))
    errors = reg.plugin_errors()
    assert "test_bad_slot" not in reg.list_tricks() and "spectral_norm" in reg.list_tricks()
    assert errors[0].startswith("trick plug-in 'badslot' (m:NoSuchSlot): trick 'test_bad_slot' "
                                "claims unknown slot 'adversarial_los'")
    assert errors[1].startswith("trick plug-in 'func' (m:make) loaded <function")
    assert errors[1].endswith("which is neither a module nor a Trick class")


def test_a_plugin_class_entry_point_registers_it(monkeypatch):
    class ViaClass(Trick):
        name = "test_via_class"

    entry_points_returning(monkeypatch, EP("cls", "m:ViaClass", lambda: ViaClass))
    try:
        assert "test_via_class" in reg.list_tricks() and reg.plugin_errors() == []
    finally:
        unregister_trick("test_via_class")


def test_tricks_name_shows_every_conflict_in_either_direction(capsys):
    """batch_norm declares no exclusions itself, yet five tricks exclude it and one shares its
    slot: all six are listed."""
    info = describe("batch_norm")
    assert info["excludes"] == {}
    assert set(info["conflicts"]) == {"gradient_penalty", "relativistic", "stylegan",
                                      "virtual_batch_norm", "wgan_gp", "progressive_growing"}
    assert "g_normalization" in " ".join(info["conflicts"]["progressive_growing"])
    assert main(["tricks", "batch_norm"]) == 0
    out = capsys.readouterr().out
    for other in info["conflicts"]:
        assert f"not with {other}: " in out
    # and from the other side: wgan_gp lists batch_norm (its own exclusion) too
    assert "batch_norm" in describe("wgan_gp")["conflicts"]


def test_required_by_is_shown(registered):
    @registered
    class Needs(Trick):
        name = "test_needs_sn"
        requires = {"spectral_norm": "for the test"}

    assert describe("spectral_norm")["required_by"] == {"test_needs_sn": "for the test"}
    assert "test_needs_sn" not in describe("spectral_norm")["conflicts"]


def test_plugin_api_is_public_and_the_old_import_still_works():
    import ganbench
    import tricks

    for name in ("Trick", "register_trick", "TrickError", "Nets", "BuildContext",
                 "StepContext", "OptimConfig", "REPLACE", "INSERT", "REPARAMETRIZE", "WRAP"):
        assert hasattr(ganbench, name), name
    assert ganbench.Trick is tricks.Trick and ganbench.register_trick is tricks.register_trick
    assert isinstance(ganbench.__version__, str) and ganbench.__version__


def test_a_hook_with_the_wrong_signature_is_refused_at_registration():
    class TooFewArgs(Trick):
        name = "test_too_few_args"

        def d_input(self, x):
            return x

    with pytest.raises(TrickError) as exc:
        register_trick(TooFewArgs)
    assert str(exc.value) == ("trick 'test_too_few_args' hook 'd_input' must accept "
                              "(self, x, is_real, step); it is defined as d_input(self, x)")
    assert "test_too_few_args" not in reg.list_tricks()

    class Flexible(Trick):  # extra optional or catch-all parameters are fine
        name = "test_flexible_args"

        def d_input(self, x, *args, scale=1.0, **kw):
            return x * scale

    register_trick(Flexible)
    unregister_trick("test_flexible_args")


def test_excludes_must_give_reasons():
    class ListExcludes(Trick):
        name = "test_list_excludes"
        excludes = ["wgan_gp"]  # a list instead of {name: reason}

    with pytest.raises(TrickError, match="excludes must map trick names to one-line reasons"):
        register_trick(ListExcludes)
