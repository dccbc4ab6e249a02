"""Grid files: sweeps, trick params, LR tuning, several designs, plug-ins and `*`, strict types,
memberships stored at run start, and --dry-run."""
import json

import pytest

from bench.cli import main
from bench.schedule.grid import load_grid
from bench.store import Store
from bench.trickapi.registry import register_trick, unregister_trick
from bench.trickapi.trick import Trick


def write(tmp_path, text, name="g.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


DATA = """
[[data]]
name = "ring8"
steps = 5
batch_size = 16
width = 8
"""


def test_a_list_is_a_sweep_axis_for_params_and_base_keys(tmp_path):
    grid = load_grid(write(tmp_path, """
design = "add-one"
tricks = ["historical_averaging", "label_smoothing"]
[params]
"historical_averaging.weight" = [0.1, 0.3]
"label_smoothing.real" = 0.8
[[data]]
name = "ring8"
steps = [5, 7]
batch_size = 16
"""))
    by_variant = {}
    for m in grid.members:
        by_variant.setdefault((m["info"]["label"], json.dumps(m["info"]["sweep"])), m)
    # baseline, label_smoothing: 2 step points; historical_averaging: 2 x 2 points
    assert len(by_variant) == 2 + 2 + 4 == len(grid.cells)
    ha = [m for m in grid.members if m["info"]["label"] == "historical_averaging"]
    assert {(m["info"]["sweep"]["steps"], m["info"]["sweep"]["historical_averaging.weight"])
            for m in ha} == {(5, 0.1), (5, 0.3), (7, 0.1), (7, 0.3)}
    assert len({m["variant_id"] for m in ha}) == 4  # each point is its own variant
    cells = {c.cell_id: c for c in grid.cells}
    for m in ha:
        cell = cells[m["cell_id"]]
        assert cell.train.steps == m["info"]["sweep"]["steps"]
        assert cell.tricks[0].param_dict["weight"] == m["info"]["sweep"][
            "historical_averaging.weight"]
    ls = next(c for c in grid.cells if c.label == "label_smoothing")
    assert ls.tricks[0].param_dict["real"] == 0.8  # a scalar param is set, not swept
    assert grid.spec["base_lr"] == {"ring8": 2e-4}


def test_tune_lr_trains_every_variant_at_each_lr_with_the_same_seeds(tmp_path):
    grid = load_grid(write(tmp_path, """
design = "add-one"
tricks = ["spectral_norm"]
seeds = [0, 1]
[tune]
lr = [1e-4, 1e-3]
""" + DATA))
    assert len(grid.cells) == 2 * 2 * 2
    assert grid.spec["tune"] == {"lr": [1e-4, 1e-3]}
    seen = {(m["info"]["label"], m["info"]["tune"]["lr"]) for m in grid.members}
    assert seen == {(v, lr) for v in ("baseline", "spectral_norm") for lr in (1e-4, 1e-3)}
    cells = {c.cell_id: c for c in grid.cells}
    for m in grid.members:
        c = cells[m["cell_id"]]
        assert c.train.g_optim.lr == c.train.d_optim.lr == m["info"]["tune"]["lr"]
    with pytest.raises(Exception, match="both swept .* and tuned"):
        load_grid(write(tmp_path, '[tune]\nlr = [1e-4]\n' + DATA.replace("steps = 5",
                                                                          "lr = [1e-3, 2e-3]")))


def test_several_designs_share_cells_and_record_the_leave_one_out_resolution(tmp_path):
    grid = load_grid(write(tmp_path, """
design = ["add-one", "leave-one-out", "pairs"]
tricks = ["label_smoothing", "one_sided_label_smoothing", "spectral_norm"]
""" + DATA))
    designs = {}
    for m in grid.members:
        designs.setdefault(m["design"], []).append(m["info"]["label"])
    assert designs["add-one"] == ["baseline", "label_smoothing", "one_sided_label_smoothing",
                                  "spectral_norm"]
    res = grid.spec["resolution"]["ring8"]
    assert res["kept"] == ["label_smoothing", "spectral_norm"]
    assert "one_sided_label_smoothing" in res["dropped"]
    assert designs["leave-one-out"] == ["baseline", "label_smoothing+spectral_norm",
                                        "spectral_norm", "label_smoothing"]
    assert len(designs["pairs"]) == 1 + 3
    # a cell asked for by several designs is trained once
    assert len(grid.cells) == len({m["cell_id"] for m in grid.members}) == 7


def test_star_means_builtin_tricks_plugins_join_when_named_or_included(tmp_path):
    class PluginTrick(Trick):
        name = "zz_plugin_for_test"
        summary = "a plug-in"

    PluginTrick.__module__ = "somebody_elses_package.tricks"
    register_trick(PluginTrick)
    try:
        star = load_grid(write(tmp_path, 'design = "add-one"\n' + DATA))
        assert "zz_plugin_for_test" not in {c.label for c in star.cells}
        named = load_grid(write(tmp_path, 'tricks = ["zz_plugin_for_test"]\n' + DATA))
        included = load_grid(write(tmp_path, 'include_plugins = true\n' + DATA))
        for grid in (named, included):
            assert "zz_plugin_for_test" in {c.label for c in grid.cells}
    finally:
        unregister_trick("zz_plugin_for_test")


@pytest.mark.parametrize("line, key, allowed", [
    ("seeds = 3", "seeds = 3", "a non-empty list of integers >= 0"),
    ('seeds = ["a"]', "seeds = ['a']", "a non-empty list of integers >= 0"),
    ('design = "triples"', None, "unknown design 'triples'"),
    ("include_plugins = 1", "include_plugins = 1", "true or false"),
    ('colour = "red"', None, "unknown key(s) colour"),
    ('[tune]\nlr = "fast"', "[tune] lr = 'fast'", "a non-empty list of positive numbers"),
    ('[params]\n"spectral_norm" = 1', '[params] "spectral_norm" = 1', '"trick.param"'),
    ('cells = [["ttur"]]', None, "cells is only read by design 'cells'"),
])
def test_bad_top_level_values_are_one_line_errors_naming_file_key_value(
        tmp_path, capsys, line, key, allowed):
    path = write(tmp_path, line + "\n" + DATA if not line.startswith("[") else DATA + line)
    assert main(["run", "--grid", path, "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ganbench: error: {path}: ")
    assert allowed in err and (key is None or key in err)
    assert not (tmp_path / "s").exists()  # nothing written before validation passes


@pytest.mark.parametrize("line, shown", [
    ('steps = "100"', "[[data]] #1 steps = '100': expected an integer >= 1"),
    ('lr = "fast"', "[[data]] #1 lr = 'fast': expected a positive number"),
    ("batch_size = [16, 1]", "[[data]] #1 batch_size = [16, 1]: expected a non-empty list"),
    ('primary = "fidd"', "[[data]] #1 primary = 'fidd': expected a metric with a direction"),
])
def test_bad_data_values_name_the_table(tmp_path, capsys, line, shown):
    text = DATA.replace("steps = 5", line) if line.startswith("steps") else DATA + line + "\n"
    path = write(tmp_path, text.replace("batch_size = 16\n", "") if "batch_size" in line
                 else text)
    assert main(["run", "--grid", path, "--store", str(tmp_path / "s")]) == 2
    assert shown in capsys.readouterr().err


@pytest.mark.parametrize("text, shown", [
    ('design = "baseline"\nseeds = [5000000000]\n' + DATA, "seed must be <= 4294967295"),
    ('design = "cells"\ncells = [["nope"]]\n' + DATA, "unknown trick 'nope'"),
    ('design = "cells"\ncells = [["label_smoothing", "label_smoothing"]]\n' + DATA,
     "'label_smoothing' is listed twice"),
    ('tricks = ["label_smoothing"]\n' + DATA
     + '[params]\n"label_smoothing.real" = 0.3\n"label_smoothing.fake" = 0.5\n',
     "need 0 <= fake < real <= 1"),
    (DATA.replace('"ring8"', '"ringg8"'), "[[data]] #1 unknown dataset 'ringg8'"),
])
def test_errors_from_below_the_grid_checks_still_name_the_file(tmp_path, capsys, text, shown):
    path = write(tmp_path, text)
    assert main(["run", "--grid", path, "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ganbench: error: {path}: ") and shown in err
    assert err.count("\n") == 1 and not (tmp_path / "s").exists()


def test_a_dataset_name_is_one_cell_id_however_it_is_spelled(tmp_path, capsys):
    from bench.core.config import CellConfig, DataConfig

    assert CellConfig(data=DataConfig(" RING8")).cell_id == CellConfig(data=DataConfig("ring8")).cell_id
    lower = load_grid(write(tmp_path, DATA, "a.toml"))
    upper = load_grid(write(tmp_path, DATA.replace('"ring8"', '"Ring8"'), "b.toml"))
    assert [c.cell_id for c in lower.cells] == [c.cell_id for c in upper.cells]
    assert {m["dataset"] for m in upper.members} == {"ring8"}
    # `train` with another spelling finds the stored cell instead of training it again
    store = str(tmp_path / "s")
    assert main(["train", "--dataset", "ring8", "--steps", "3", "--batch-size", "16",
                 "--width", "8", "--store", store]) == 0
    assert main(["train", "--dataset", "RING8", "--steps", "3", "--batch-size", "16",
                 "--width", "8", "--store", store]) == 0
    assert "is already in" in capsys.readouterr().err
    assert len(list(Store(store).records())) == 1


def test_a_dataset_in_two_data_tables_is_refused(tmp_path, capsys):
    path = write(tmp_path, DATA + DATA.replace("name = \"ring8\"", "name = \"Ring8\""))
    assert main(["run", "--grid", path, "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "[[data]] #2 repeats dataset 'Ring8' of [[data]] #1; use sweep axes" in err
    assert err.count("\n") == 1 and not (tmp_path / "s").exists()


def test_a_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes('description = "caf\xe9"\n'.encode("latin-1") + DATA.encode())
    assert main(["run", "--grid", str(path), "--store", str(tmp_path / "s")]) == 2
    assert "not UTF-8 text (byte 18" in capsys.readouterr().err


def test_run_stores_memberships_and_dry_run_shows_statuses_and_resolution(tmp_path, capsys):
    path = write(tmp_path, """
description = "memberships"
design = ["add-one", "leave-one-out"]
tricks = ["label_smoothing", "one_sided_label_smoothing"]
""" + DATA)
    store = str(tmp_path / "s")
    assert main(["run", "--grid", path, "--store", store, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "ring8            add-one                3 to train" in out
    assert "full set (rule: grid order, first kept): label_smoothing" in out
    assert "dropped one_sided_label_smoothing: label_smoothing excludes" in out
    assert not (tmp_path / "s").exists()  # a dry run writes nothing
    assert main(["run", "--grid", path, "--store", store, "--workers", "1",
                 "--curve-every", "0", "--metrics", "modes"]) == 0
    capsys.readouterr()
    with Store(store) as s:
        spec = s.grids()["g"]
        members = s.members("g")
        timed = next(s.records()).timings["ms_per_step"]
    assert spec["designs"] == {"ring8": ["add-one", "leave-one-out"]}
    assert spec["resolution"]["ring8"]["kept"] == ["label_smoothing"]
    assert {(m["design"], m["info"]["role"]) for m in members} == {
        ("add-one", "baseline"), ("add-one", "variant"), ("leave-one-out", "baseline"),
        ("leave-one-out", "all")}
    assert timed > 0
    assert main(["run", "--grid", path, "--store", store, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "ring8            add-one                3 done" in out
    assert "nothing to train" in out


def test_every_shipped_preset_loads_into_cells():
    from bench.schedule.grid import GRID_DIR

    presets = sorted(p.stem for p in GRID_DIR.glob("*.toml"))
    assert {"smoke", "quick", "cpu-default", "cpu-full", "stacked", "gpu", "paper-2d"} <= set(presets)
    for name in presets:
        grid = load_grid(name)
        assert grid.cells and len({c.cell_id for c in grid.cells}) == len(grid.cells), name


def test_a_preset_name_wins_over_a_same_named_folder(tmp_path, monkeypatch):
    (tmp_path / "smoke").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_grid("smoke").name == "smoke"


def test_a_second_grid_file_with_the_same_name_warns_that_it_replaces_the_first(tmp_path, capsys):
    store = str(tmp_path / "s")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first, second = write(tmp_path / "a", DATA), write(tmp_path / "b", DATA)
    argv = ["run", "--store", store, "--workers", "1", "--curve-every", "0", "--grid"]
    assert main(argv + [first]) == 0 and main(argv + [first]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(argv + [second]) == 0
    err = capsys.readouterr().err
    assert f"recorded grid 'g' from {first}; {second} has the same name" in err
    with Store(store) as s:
        assert s.grids()["g"]["source"] == second


def test_per_net_learning_rates_and_mlp_options_from_a_data_table(tmp_path, capsys):
    text = ('design = "baseline"\n' + DATA
            + 'g_lr = 1e-3\nd_lr = 1e-4\nactivation = "tanh"\ninit = "orthogonal"\n')
    (cell,) = load_grid(write(tmp_path, text)).cells
    assert cell.train.g_optim.lr == 1e-3 and cell.train.d_optim.lr == 1e-4
    assert cell.net.activation == "tanh" and cell.net.init == "orthogonal"
    tuned = write(tmp_path, "[tune]\nlr = [1e-4, 1e-3]\n" + DATA + "g_lr = 1e-3\n", "t.toml")
    assert main(["run", "--grid", tuned, "--store", str(tmp_path / "s")]) == 2
    assert "g_lr fix a net's lr; they cannot be combined with an lr sweep or [tune] lr" in \
        capsys.readouterr().err
    image = write(tmp_path, DATA.replace("ring8", "digits") + 'activation = "tanh"\n', "i.toml")
    assert main(["run", "--grid", image, "--store", str(tmp_path / "s")]) == 2
    assert "activation is an option of the 2-D MLPs" in capsys.readouterr().err
    bad = write(tmp_path, DATA + 'init = "xavier"\n', "b.toml")
    assert main(["run", "--grid", bad, "--store", str(tmp_path / "s")]) == 2
    assert "[[data]] #1 init must be one of normal, orthogonal" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_data_table_sets_its_own_trick_params_over_the_grids(tmp_path, capsys):
    """A trick's authors' setting for one kind of data (e.g. WGAN-GP's toy script on 2-D data)
    goes in that dataset's table; the grid-wide [params] apply where the table does not say."""
    grid = load_grid(write(tmp_path, """
design = "add-one"
tricks = ["wgan_gp", "historical_averaging"]
[params]
"historical_averaging.weight" = 0.3
"wgan_gp.n_critic" = 2
[[data]]
name = "ring8"
steps = 5
batch_size = 16
params = { "wgan_gp.setting" = "toy", "historical_averaging.weight" = [0.1, 0.2] }
[[data]]
name = "grid25"
steps = 5
batch_size = 16
"""))
    got = {}
    for c in grid.cells:
        for t in c.tricks:
            got.setdefault((c.data.name, t.name), set()).add(tuple(sorted(t.param_dict.items())))
    ring_gp = dict(next(iter(got["ring8", "wgan_gp"])))
    assert ring_gp["setting"] == "toy" and ring_gp["gp_weight"] == 0.1  # the toy lambda
    assert ring_gp["n_critic"] == 2  # the grid's [params] still apply
    grid_gp = dict(next(iter(got["grid25", "wgan_gp"])))
    assert grid_gp.get("setting", "paper") == "paper" and grid_gp["gp_weight"] == 10.0
    assert {dict(p)["weight"] for p in got["ring8", "historical_averaging"]} == {0.1, 0.2}
    assert {dict(p)["weight"] for p in got["grid25", "historical_averaging"]} == {0.3}


@pytest.mark.parametrize("params, shown", [
    ('{ "wgan_gp.gp_weight" = -1 }', "gp_weight"),
    ('{ "nosuch.x" = 1 }', "nosuch"),
    ('{ "label_smoothing.real" = 0.8 }', "label_smoothing"),  # no design trains it
    ('3', "params"),
])
def test_bad_data_table_params_are_one_line(tmp_path, capsys, params, shown):
    path = write(tmp_path, f"""
design = "add-one"
tricks = ["wgan_gp"]
[[data]]
name = "ring8"
steps = 5
params = {params}
""")
    assert main(["run", "--grid", path, "--dry-run", "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and shown in err and path in err
