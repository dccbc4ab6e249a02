"""Designs (bench/designs/): one test each, on plain names with a fake conflict rule, so each
test shows the mechanism (what is trained, what is resolved, what is aliased)."""
from itertools import combinations

import numpy as np
import pytest

from bench.core.config import ConfigError
from bench.designs import DesignOptions, get_design, list_designs, with_baseline

NAMES = ["a", "b", "c", "d"]


def clash(*pairs):
    """A conflict rule: the listed pairs may not run together."""
    def conflicts(names):
        return [f"{x} excludes {y}" for x, y in pairs if x in names and y in names]
    return conflicts


def run(design, tricks=NAMES, **options):
    return get_design(design)(list(tricks), DesignOptions(**options))


def labels(result):
    return [v.label for v in with_baseline(result.variants)]


def test_registry_lists_every_design_and_refuses_unknown_ones():
    assert list(list_designs()) == ["baseline", "add-one", "leave-one-out", "pairs", "factorial",
                                    "fractional-factorial", "cells"]
    with pytest.raises(ConfigError, match="unknown design 'triples'.*known: baseline"):
        get_design("triples")


def test_baseline():
    assert labels(run("baseline")) == ["baseline"]


def test_add_one():
    assert labels(run("add-one")) == ["baseline", "a", "b", "c", "d"]


def test_leave_one_out_has_n_plus_1_variants_and_resolves_conflicts_in_grid_order():
    plain = run("leave-one-out")
    assert [v.label for v in plain.variants] == ["a+b+c+d", "b+c+d", "a+c+d", "a+b+d", "a+b+c"]
    assert plain.variants[0].role == "all"
    # b conflicts with a (kept first) and d with c: the full set keeps the earlier of each
    result = run("leave-one-out", conflicts=clash(("a", "b"), ("c", "d")))
    res = result.spec["resolution"]
    assert res["kept"] == ["a", "c"] and res["dropped"] == {"b": "a excludes b",
                                                             "d": "c excludes d"}
    assert [v.label for v in result.variants] == ["a+c", "c", "a"]


def test_pairs_are_every_pair():
    result = run("pairs", tricks=list("abcde"))
    assert len(result.variants) == 10  # C(5, 2)
    assert {v.tricks for v in result.variants} == set(combinations("abcde", 2))


def test_factorial_is_every_subset_with_factor_levels():
    result = run("factorial", tricks=["a", "b", "c"])
    assert len(result.variants) == 8
    assert {v.tricks for v in result.variants} == {
        tuple(t for t in "abc" if t in s) for s in ["", "a", "b", "c", "ab", "ac", "bc", "abc"]}
    for v in result.variants:
        assert v.factors == {t: int(t in v.tricks) for t in "abc"}
    with pytest.raises(ConfigError, match="1 to 6 tricks, got 7"):
        run("factorial", tricks=list("abcdefg"))


def test_fractional_factorial_has_2_to_the_k_minus_p_runs_and_resolution_iv():
    tricks = list("pqrstuv")  # k = 7
    result = run("fractional-factorial", tricks=tricks)
    spec = result.spec
    assert spec["runs"] == len(result.variants) == 2 ** (7 - spec["p"]) == 16
    X = np.array([[1 if v.factors[t] else -1 for t in tricks] for v in result.variants])
    # no main effect aliased with a two-factor interaction (resolution >= IV) ...
    for i in range(7):
        for j, k in combinations(range(7), 2):
            assert abs(X[:, i] @ (X[:, j] * X[:, k])) < 16
    # ... and the main effects are mutually orthogonal
    assert np.array_equal(X.T @ X, 16 * np.eye(7))
    # the generators reproduce the design's columns from the base columns
    letters = spec["letters"]
    for gen in spec["generators"]:
        col, word = gen.split(" = ")
        prod = np.prod([X[:, tricks.index(letters[w])] for w in word], axis=0)
        assert np.array_equal(prod, X[:, tricks.index(letters[col])])
    assert spec["aliases"][0].startswith("a = ")
    assert spec["unestimable"] == []


def test_fractional_factorial_conflicting_runs_are_named_and_unestimable_effects_said():
    # p and q may never run together: every run holding both is lost
    result = run("fractional-factorial", tricks=["p", "q", "r"], conflicts=clash(("p", "q")))
    assert set(result.spec["excluded_runs"]) == {"p+q", "p+q+r"}
    assert result.spec["unestimable"] == []  # 6 of 8 runs still estimate 3 main effects
    # with resolution IV over 4 factors (8 runs) and 3 conflicting pairs the main effects of
    # the clashing tricks can no longer be told apart
    many = run("fractional-factorial", tricks=list("pqrs"),
               conflicts=clash(("p", "q"), ("p", "r"), ("p", "s"), ("q", "r")))
    assert "p" in many.spec["unestimable"]


def test_cells_is_the_explicit_list():
    result = run("cells", cells=(("a", "b"), ("c",)))
    assert labels(result) == ["baseline", "a+b", "c"]
