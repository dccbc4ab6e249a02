"""Class labels: the projection term, G's dependence on y, uniform labels when sampling, the
labels the loop carries, and training on digits."""
import torch
from torch import nn

from bench.trickapi.registry import conflict_reasons, create_trick
from tests.test_trainer import _interrupted_vs_straight
from tests.tiny import tiny_trainer, weights
from tricks.conditional import ProjectionHead


def _cond(t):
    return next(x for x in t.tricks if x.name == "conditional")


def test_projection_term_is_the_embedding_dot_the_pooled_features():
    t = tiny_trainer("digits", ["conditional"], steps=1)
    D, labels = t.nets.D, _cond(t).labels
    assert isinstance(D.head, ProjectionHead)
    x = torch.randn(6, 1, 16, 16)
    y = torch.tensor([0, 1, 2, 3, 9, 9])
    labels.y = y
    h = D.pre_head(D.features(x))
    plain = D.head.head(h).flatten(1).squeeze(1)
    expected = plain + (D.head.embed.weight[y] * h.sum(dim=(2, 3))).sum(1)
    torch.testing.assert_close(D(x), expected)
    # by hand for one row: sum over channels c and positions p of e_y[c] * h[c, p]
    row = sum(D.head.embed.weight[9, c] * h[4, c].sum() for c in range(h.shape[1]))
    torch.testing.assert_close(D(x)[4] - plain[4], row)


def test_generator_output_depends_on_the_label():
    t = tiny_trainer("digits", ["conditional"], steps=1)
    G, labels = t.nets.G, _cond(t).labels
    z = torch.randn(4, t.cell.net.z_dim)
    with torch.no_grad():
        labels.y = torch.zeros(4, dtype=torch.long)
        a = G(z)
        labels.y = torch.full((4,), 7)
        b = G(z)
        c = G(z)
    assert not torch.allclose(a, b) and torch.equal(b, c)
    assert G.synthesis.blocks[0].main.in_channels == t.cell.net.z_dim + 10


def test_conditional_batch_norm_where_g_has_batch_norm():
    t = tiny_trainer("digits", ["batch_norm", "conditional"], steps=2)
    norms = [st.norm for st in t.nets.G.blocks]
    assert all(isinstance(n, nn.Sequential) and isinstance(n[0], nn.BatchNorm2d) for n in norms)
    assert t.train() == ("done", "")
    # class gains/biases start at 0 and are trained
    assert any(n[1].bias.weight.abs().sum() > 0 for n in norms)


def test_sampling_draws_labels_uniformly_from_the_scoring_generator():
    t = tiny_trainer("digits", ["conditional"], steps=1)
    seen = []
    original = _cond(t).condition
    _cond(t).condition = lambda y: (seen.append(y.clone()), original(y))
    t.sample(5000, torch.Generator().manual_seed(0))
    y = torch.cat(seen)
    counts = torch.bincount(y, minlength=10)
    assert len(y) == 5000 and counts.min() > 400 and counts.max() < 600  # ~500 each
    seen.clear()
    x1 = t.sample(8, torch.Generator().manual_seed(1))
    x2 = t.sample(8, torch.Generator().manual_seed(1))
    assert torch.equal(x1, x2)  # labels come from the given generator: deterministic


def test_the_loop_conditions_on_each_real_batch_labels():
    t = tiny_trainer("digits", ["conditional"], steps=1, batch_size=8)
    seen = []
    original = _cond(t).condition
    _cond(t).condition = lambda y: (seen.append(y.clone()), original(y))
    real, y = t.stream.next()  # what the step's real batch will be (same permutation)
    t.stream.load_state_dict({"epoch": 0, "pos": 0})
    t.train_step()
    assert len(seen) == 1 and torch.equal(seen[0], y)
    assert torch.equal(y, t.data.train_labels[t.stream._perm[:8]])
    plain = tiny_trainer("digits", [], steps=1)
    assert plain.stream.labels is None  # no trick wants labels: none carried


def test_trains_on_digits_and_resumes_exactly(tmp_path):
    straight, resumed = _interrupted_vs_straight("digits", ["conditional"], tmp_path)
    a, b = weights(straight.nets.D), weights(resumed.nets.D)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "mapping.embed.weight" in weights(straight.nets.G)


def test_applicability_and_declared_conflicts():
    c = create_trick("conditional")
    assert conflict_reasons([c], "2d") and not conflict_reasons([c], "image")
    for other in ("progressive_growing", "stylegan", "virtual_batch_norm"):
        reasons = conflict_reasons([c, create_trick(other)], "image")
        assert reasons and "conditional" in reasons[0]


def test_a_set_without_one_label_per_sample_makes_the_cell_not_applicable(tmp_path):
    """Stacked sets have a label per channel: a grid asking for `conditional` there gets a
    `not-applicable` record with the reason (never a `failed` one), as on 2-D data."""
    from bench.data import dataset_traits
    from bench.schedule.grid import load_grid
    from bench.schedule.runner import disallowed_record

    assert dataset_traits("digits") == {"class_labels"}
    assert dataset_traits("stacked-digits") == set() == dataset_traits("ring8")
    c = create_trick("conditional")
    assert not conflict_reasons([c], "image", dataset_traits("mnist"))
    (reason,) = conflict_reasons([c], "image", dataset_traits("stacked-mnist"))
    assert reason == "conditional does not apply to data without one class label per sample"
    path = tmp_path / "g.toml"
    path.write_text('design = "add-one"\ntricks = ["conditional"]\n'
                    '[[data]]\nname = "stacked-digits"\nsteps = 2\n')
    cells = [cell for cell in load_grid(str(path)).cells if cell.tricks]
    (record,) = [disallowed_record(cell) for cell in cells]
    assert record.status == "not-applicable" and record.reason == reason
