"""Registry: naming, typed params, typo guard, conflicts as readable reasons, entry points."""

import pytest

from bench.trickapi.registry import (conflict_reasons, create_trick, describe, list_tricks,
                                     register_trick, unregister_trick)
from bench.trickapi.trick import Trick, TrickError

SIX = ["instance_noise", "label_smoothing", "one_sided_label_smoothing", "spectral_norm",
       "unrolled", "wgan_gp"]


def test_the_six_interface_tricks_are_registered():
    assert set(SIX) <= set(list_tricks())


def test_wildcard_listing():
    assert "instance_noise" in list_tricks("*noise*")
    assert all("label" in n for n in list_tricks("*label*"))
    assert list_tricks("no_such_*") == []


def test_unknown_trick_suggests_closest_name():
    with pytest.raises(TrickError, match="did you mean 'spectral_norm'"):
        create_trick("spectral_nrom")


def test_unknown_param_names_it_and_the_accepted_ones():
    with pytest.raises(TrickError, match=r"no param 'rea'.*accepted: real, fake"):
        create_trick("label_smoothing", rea=0.8)


@pytest.mark.parametrize("params, msg", [
    ({"real": "high"}, "must be a number"),
    ({"real": True}, "must be a number"),
    ({"real": 0.05, "fake": 0.1}, "need 0 <= fake < real <= 1"),
])
def test_ill_typed_or_out_of_range_params_fail(params, msg):
    with pytest.raises(TrickError, match=msg):
        create_trick("label_smoothing", **params)


def test_int_param_rejects_float_and_literal_rejects_unknown_choice():
    with pytest.raises(TrickError, match="must be an integer"):
        create_trick("unrolled", k=2.5)
    with pytest.raises(TrickError, match="must be one of 'linear', 'none'"):
        create_trick("instance_noise", anneal="cosine")


def test_ints_are_accepted_for_float_params():
    assert create_trick("wgan_gp", gp_weight=5).p.gp_weight == 5.0


def test_duplicate_name_raises():
    class Clash(Trick):
        name = "label_smoothing"

    with pytest.raises(TrickError, match="already registered"):
        register_trick(Clash)


def test_hook_typo_is_caught_at_registration():
    class Typo(Trick):
        name = "typo_trick"

        def d_inputs(self, x, is_real, step):
            return x

    with pytest.raises(TrickError, match="did you mean 'd_input'"):
        register_trick(Typo)
    assert "typo_trick" not in list_tricks()


def test_unknown_slot_is_rejected():
    class BadSlot(Trick):
        name = "bad_slot"
        slots = ("loss",)

    with pytest.raises(TrickError, match="unknown slot 'loss'"):
        register_trick(BadSlot)


def test_slot_conflict_reason_is_readable():
    reasons = conflict_reasons([create_trick("wgan_gp"), create_trick("label_smoothing")])
    assert reasons == ["wgan_gp excludes label_smoothing: a Wasserstein critic has no targets to smooth"]


def test_shared_slot_conflicts():
    @register_trick
    class OtherLoss(Trick):
        name = "other_loss_for_test"
        slots = ("adversarial_loss",)

    try:
        reasons = conflict_reasons([create_trick("wgan_gp"), create_trick("other_loss_for_test")])
        assert len(reasons) == 1 and "both claim the 'adversarial_loss' slot" in reasons[0]
    finally:
        unregister_trick("other_loss_for_test")


def test_two_sided_exclusion_is_reported_once():
    reasons = conflict_reasons([create_trick("label_smoothing"),
                                create_trick("one_sided_label_smoothing")])
    assert len(reasons) == 1


def test_requires_and_applies_to():
    @register_trick
    class NeedsSN(Trick):
        name = "needs_sn_for_test"
        requires = {"spectral_norm": "it rescales spectrally normalised weights"}
        applies_to = frozenset({"image"})

    try:
        reasons = conflict_reasons([create_trick("needs_sn_for_test")], "2d")
        assert any("does not apply to 2d data" in r for r in reasons)
        assert any("requires spectral_norm" in r for r in reasons)
        assert conflict_reasons([create_trick("needs_sn_for_test"),
                                 create_trick("spectral_norm")], "image") == []
    finally:
        unregister_trick("needs_sn_for_test")


def test_cell_status_follows_the_reasons_type_not_its_wording():
    """not-applicable only when every reason is about the data; a plug-in's exclusion whose text
    happens to say "does not apply to" is still a conflict between tricks."""
    from bench.schedule.runner import disallowed_record
    from bench.trickapi.registry import typed_conflict_reasons
    from tests.tiny import tiny_cell

    @register_trick
    class Picky(Trick):
        name = "picky_for_test"
        excludes = {"spectral_norm": "its rescaling does not apply to normalised weights"}
        applies_to = frozenset({"2d"})

    try:
        both = [create_trick("picky_for_test"), create_trick("spectral_norm")]
        assert [k for k, _ in typed_conflict_reasons(both, "2d")] == ["tricks"]
        assert [k for k, _ in typed_conflict_reasons(both[:1], "image")] == ["data"]
        assert disallowed_record(tiny_cell("ring8", ["picky_for_test", "spectral_norm"])
                                 ).status == "conflict"
        assert disallowed_record(tiny_cell("digits", ["picky_for_test"])).status \
            == "not-applicable"
        assert disallowed_record(tiny_cell("ring8", ["picky_for_test"])) is None
    finally:
        unregister_trick("picky_for_test")


def test_needs_names_a_known_data_trait():
    with pytest.raises(TrickError, match="needs must be a subset of {'class_labels'}"):
        @register_trick
        class NeedsDepth(Trick):
            name = "needs_depth_for_test"
            needs = frozenset({"depth_maps"})
    assert "needs_depth_for_test" not in list_tricks()


def test_describe_is_json_ready():
    info = describe("wgan_gp")
    assert info["slots"] == ["adversarial_loss", "d_steps", "optimizer"]
    assert {"name": "n_critic", "type": "int", "default": 5} in info["params"]
    assert info["excludes"]["label_smoothing"]


def test_entry_point_plugins_are_loaded(monkeypatch, tmp_path):
    import bench.trickapi.registry as reg

    module = tmp_path / "thirdparty_trick.py"
    module.write_text(
        "from tricks import Trick, register_trick\n"
        "@register_trick\n"
        "class Third(Trick):\n"
        "    name = 'third_party_for_test'\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    class EP:
        name, value = "third", "thirdparty_trick"

        def load(self):
            import importlib
            return importlib.import_module(self.value)

    monkeypatch.setattr(reg, "entry_points", lambda group: [EP()] if group == reg.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(reg, "_loaded", False)
    try:
        assert "third_party_for_test" in reg.list_tricks()
    finally:
        unregister_trick("third_party_for_test")


def test_broken_plugin_names_itself(monkeypatch):
    """A plug-in that fails to import is reported in one line; the built-in tricks still load
    (more plug-in mistakes: tests/test_plugin_errors.py)."""
    import bench.trickapi.registry as reg

    class EP:
        name, value = "broken", "no_such_module_xyz"

        def load(self):
            raise ImportError("No module named 'no_such_module_xyz'")

    monkeypatch.setattr(reg, "entry_points", lambda group: [EP()])
    monkeypatch.setattr(reg, "_loaded", False)
    monkeypatch.setattr(reg, "_PLUGIN_ERRORS", [])
    assert "spectral_norm" in reg.list_tricks()
    assert [e for e in reg.plugin_errors() if "plug-in 'broken'" in e]
