"""Every pair of registered tricks that the conflict function allows trains a few steps on a 2-D
and a 16x16 image dataset: nothing crashes and every logged loss is finite. Every declared
conflict has a one-line reason."""
import itertools
import math

import pytest

from bench.data import dataset_kind
from bench.trickapi.registry import conflict_reasons, create_trick, describe, list_tricks
from tests.tiny import tiny_trainer

DATASETS = ("ring8", "digits")


def _allowed_pairs():
    names = list_tricks()
    for a, b in itertools.combinations(names, 2):
        for ds in DATASETS:
            if not conflict_reasons([create_trick(a), create_trick(b)], dataset_kind(ds)):
                yield pytest.param(ds, a, b, id=f"{ds}-{a}+{b}")


@pytest.mark.parametrize("dataset, a, b", list(_allowed_pairs()))
def test_allowed_pair_trains_with_finite_losses(dataset, a, b):
    trainer = tiny_trainer(dataset, [a, b], steps=2, batch_size=8)
    status, reason = trainer.train()
    assert status == "done", reason
    for name, points in trainer.curves.items():
        assert all(math.isfinite(v) for _, v in points), name


def test_every_declared_conflict_has_a_one_line_reason():
    for name in list_tricks():
        info = describe(name)
        for other, why in {**info["excludes"], **info["requires"]}.items():
            assert other in list_tricks(), f"{name} names unknown trick '{other}'"
            assert why.strip() and "\n" not in why, (name, other)


def test_disallowed_pairs_are_explained():
    names = list_tricks()
    for a, b in itertools.combinations(names, 2):
        reasons = conflict_reasons([create_trick(a), create_trick(b)])
        assert all(r.strip() and "\n" not in r for r in reasons)
