"""The hook rules are data: every hook has a spec, the Trick defaults match them, the docs'
hook table is generated from them, and the TrickSet combines results as the spec says."""
from pathlib import Path

import pytest
import torch

from bench.trickapi.hook_table import markdown_table
from bench.trickapi.hooks import HOOK_SPECS, SLOT_HOOKS
from bench.trickapi.trick import SLOTS, Trick, TrickError
from bench.trickapi.trickset import TrickSet

ROOT = Path(__file__).resolve().parent.parent


def test_every_hook_is_a_trick_method_and_every_slot_hook_a_known_slot():
    for h in HOOK_SPECS:
        assert callable(getattr(Trick, h.name)), h.name
        assert h.combine in ("chain", "product", "first", "merge", "each", "same")
    assert set(SLOT_HOOKS) <= set(SLOTS)


def test_the_hook_table_names_every_hook():
    """The docs' hook reference is this table (docs/gen_reference.py renders it)."""
    table = markdown_table()
    assert "| `after_g_step(nets, step)` |" in table
    assert table.count("\n| `") == len(HOOK_SPECS)

class _Lazy(Trick):
    def __init__(self, name, n):
        super().__init__()
        self.name, self._n = name, n

    def lazy_interval(self, net):
        return self._n if net == "D" else 1


def test_same_combine_rule_for_lazy_intervals():
    assert TrickSet([_Lazy("a", 4), _Lazy("b", 4), _Lazy("c", 1)]).lazy_interval("D") == 4
    assert TrickSet([_Lazy("a", 4)]).lazy_interval("G") == 1
    with pytest.raises(TrickError, match="'a' and 'b' regularise D lazily every 4 and 2"):
        TrickSet([_Lazy("a", 4), _Lazy("b", 2)]).lazy_interval("D")
    with pytest.raises(TrickError, match="trick 'a' hook 'lazy_interval'"):
        TrickSet([_Lazy("a", 0)]).lazy_interval("D")


def test_sampler_result_is_checked_and_defaults_to_g():
    G = torch.nn.Linear(2, 2)
    assert TrickSet([]).sampler(G) is G

    class Bad(Trick):
        name = "bad"

        def sampler(self, G):
            return 3

    with pytest.raises(TrickError, match="trick 'bad' hook 'sampler': must return a module"):
        TrickSet([Bad()]).sampler(G)


def test_condition_is_called_for_every_trick_that_overrides_it():
    seen = []

    class Cond(Trick):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def condition(self, y):
            seen.append((self.name, y.tolist()))

    ts = TrickSet([Cond("b"), Cond("a"), Trick()])
    assert ts.wants_labels and not TrickSet([Trick()]).wants_labels
    ts.condition(torch.tensor([1, 2]))
    assert seen == [("a", [1, 2]), ("b", [1, 2])]
