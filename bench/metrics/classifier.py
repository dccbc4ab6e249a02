"""The suite's own feature extractor: a small CNN per image dataset, trained deterministically.

Data: the dataset's train split, quantised to uint8 exactly as generated samples are, reduced to its
unique (image, label) pairs in lexicographic order. For stacked sets the classifier is the
single-channel digit classifier: its data are the channels of the stacked train set with their
per-channel labels -- which, after the de-duplication, are exactly the base set's train images, so
``digits`` and ``stacked-digits`` share one classifier (same data hash, same cache file).

Training: fixed seed, CPU, one thread, deterministic algorithms, a fixed number of Adam steps over
seeded epoch permutations, so the weights are bit-identical on retraining (on the same machine
kind). The result is cached under ``<cache>/classifiers/clf-<key>.pt``, where ``key`` hashes the
recipe, the data and the network shape; the file records the test accuracy on the unique test pairs.
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .cache import atomic_torch_save, cache_root, sha256_json, sha256_state_dict, update_with_tensor
from .errors import MetricError
from .images import from_uint8, to_uint8

# Everything that changes the trained weights. Bump "version" when the training code changes.
RECIPE: dict = {
    "version": 2,
    "arch": "cnn-2conv-k4s2",
    "widths": [16, 32],
    "feat_dim": 128,
    "pool": 4,
    "optimizer": "adam",
    "lr": 2e-3,
    "betas": [0.9, 0.999],
    "weight_decay": 1e-4,
    "schedule": "cosine",
    "batch_size": 64,
    "epochs": 20,
    "min_steps": 600,
    "max_steps": 3000,
    "augment": "shift1",  # random integer shift by up to 1 px per axis, filled with background (-1)
    "seed": 0,
    "threads": 1,
    "data": "unique uint8 (image,label) pairs, lexicographic",
}
RECIPE_HASH = sha256_json(RECIPE)
FEATURE_LAYER = "penultimate"
_FORMAT = 1


class DigitCNN(nn.Module):
    """(conv 4x4 stride 2 -> ReLU) x2 -> adaptive avg pool -> FC (penultimate, ReLU) -> FC (logits).

    Strided convs rather than max pooling: same accuracy here, several times faster on CPU.
    The returned penultimate features are multiplied by the buffer ``feat_scale``, fixed after
    training so that the mean squared feature on the train set is 1 (KID's cubic kernel
    (x.y/d + 1)^3 then sees values of order 1, as with Inception features); the logits use the
    unscaled features.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths=(16, 32), feat_dim: int = 128,
                 pool: int = 4):
        super().__init__()
        w0, w1 = widths
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w0, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(w0, w1, 4, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(pool), nn.Flatten(),
        )
        self.fc = nn.Linear(w1 * pool * pool, feat_dim)
        self.head = nn.Linear(feat_dim, num_classes)
        self.register_buffer("feat_scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: float [B, C, H, W] in [-1, 1] -> (penultimate features [B, feat_dim], logits [B, K])."""
        f = F.relu(self.fc(self.body(x)))
        return f * self.feat_scale, self.head(f)


@dataclass(frozen=True)
class TrainedClassifier:
    net_kwargs: dict
    state_dict: dict
    per_channel: bool  # True for stacked sets: classify each channel with a 1-channel net
    recipe_hash: str
    data_hash: str
    key: str
    weights_sha256: str
    test_accuracy: float
    path: str

    def build(self, device: torch.device | str = "cpu") -> DigitCNN:
        net = DigitCNN(**self.net_kwargs)
        net.load_state_dict(self.state_dict)
        return net.to(device).eval().requires_grad_(False)

    def protocol(self) -> dict:
        return {"recipe_hash": self.recipe_hash, "data_hash": self.data_hash,
                "weights_sha256": self.weights_sha256, "test_accuracy": self.test_accuracy,
                "per_channel": self.per_channel}


# ---------------------------------------------------------------------------------------------
# data

@dataclass(frozen=True)
class _ClfData:
    train_x: torch.Tensor  # uint8 [M, C, H, W]
    train_y: torch.Tensor  # int64 [M]
    test_x: torch.Tensor
    test_y: torch.Tensor
    per_channel: bool
    num_classes: int
    data_hash: str


_data_memo: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_lock = threading.RLock()


def is_stacked(dataset) -> bool:
    return dataset.train_labels is not None and dataset.train_labels.dim() == 2


def _unique_pairs(x: torch.Tensor, y: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images + labels -> unique (image, label) pairs sorted lexicographically."""
    xq = to_uint8(x)
    if per_channel:  # [N, 3, H, W] + [N, 3] -> [3N, 1, H, W] + [3N]
        xq = xq.reshape(-1, 1, *xq.shape[2:])
        y = y.reshape(-1)
    shape = xq.shape[1:]
    rows = torch.cat([xq.reshape(len(xq), -1).to(torch.int16), y.reshape(-1, 1).to(torch.int16)], dim=1)
    rows = torch.unique(rows, dim=0, sorted=True)
    return rows[:, :-1].to(torch.uint8).reshape(-1, *shape).contiguous(), rows[:, -1].to(torch.int64)


def classifier_data(dataset) -> _ClfData:
    """The classifier's train/test data for an image dataset (memoised per Dataset object)."""
    if dataset.kind != "image":
        raise MetricError(f"the classifier extractor needs an image dataset, {dataset.name} is {dataset.kind}")
    if dataset.train_labels is None or dataset.test_labels is None or not dataset.num_classes:
        raise MetricError(f"the classifier extractor needs class labels, {dataset.name} has none")
    with _lock:
        try:
            return _data_memo[dataset]
        except (KeyError, TypeError):
            pass
    per_channel = is_stacked(dataset)
    tx, ty = _unique_pairs(dataset.train, dataset.train_labels, per_channel)
    vx, vy = _unique_pairs(dataset.test, dataset.test_labels, per_channel)
    h = hashlib.sha256()
    for t in (tx, ty, vx, vy):
        update_with_tensor(h, t)
    h.update(f"classes={dataset.num_classes}".encode())
    data = _ClfData(tx, ty, vx, vy, per_channel, int(dataset.num_classes), h.hexdigest())
    with _lock:
        try:
            _data_memo[dataset] = data
        except TypeError:
            pass
    return data


# ---------------------------------------------------------------------------------------------
# training

@contextmanager
def _deterministic_cpu(threads: int):
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.set_num_threads(prev_threads)


def _shift1(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random integer shift in {-1, 0, 1}^2 per image, filling with background (-1)."""
    b, _, h, w = x.shape
    pad = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dy = torch.randint(0, 3, (b,), generator=g)
    dx = torch.randint(0, 3, (b,), generator=g)
    out = torch.empty_like(x)
    for oy in range(3):
        for ox in range(3):
            m = (dy == oy) & (dx == ox)
            if m.any():
                out[m] = pad[m, :, oy:oy + h, ox:ox + w]
    return out


def _accuracy(net: DigitCNN, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> float:
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            _, logits = net(from_uint8(x[i:i + batch]))
            correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return correct / max(1, len(x))


def train_classifier(data: _ClfData, recipe: dict = RECIPE) -> tuple[dict, dict, float]:
    """Train on CPU deterministically. Returns (net_kwargs, state_dict, test_accuracy)."""
    net_kwargs = {"in_channels": int(data.train_x.shape[1]), "num_classes": data.num_classes,
                  "widths": tuple(recipe["widths"]), "feat_dim": recipe["feat_dim"], "pool": recipe["pool"]}
    n = len(data.train_x)
    bs = min(recipe["batch_size"], n)
    steps_per_epoch = max(1, n // bs)
    steps = int(min(recipe["max_steps"], max(recipe["min_steps"], recipe["epochs"] * steps_per_epoch)))
    with _deterministic_cpu(recipe["threads"]), torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe["seed"])
        net = DigitCNN(**net_kwargs)
        g = torch.Generator().manual_seed(recipe["seed"])
        opt = torch.optim.Adam(net.parameters(), lr=recipe["lr"], betas=tuple(recipe["betas"]),
                               weight_decay=recipe["weight_decay"])
        xs = from_uint8(data.train_x)
        ys = data.train_y
        net.train()
        perm, pos = torch.randperm(n, generator=g), 0
        for step in range(steps):
            if pos + bs > n:
                perm, pos = torch.randperm(n, generator=g), 0
            idx = perm[pos:pos + bs]
            pos += bs
            xb = xs[idx]
            if recipe["augment"] == "shift1":
                xb = _shift1(xb, g)
            lr = 0.5 * recipe["lr"] * (1 + math.cos(math.pi * step / steps))
            for group in opt.param_groups:
                group["lr"] = lr
            _, logits = net(xb)
            loss = F.cross_entropy(logits, ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.inference_mode():
            sq = sum(float(net(xs[i:i + 1024])[0].double().pow(2).sum()) for i in range(0, n, 1024))
        net.feat_scale.fill_((sq / (n * recipe["feat_dim"])) ** -0.5 if sq > 0 else 1.0)
        acc = _accuracy(net, data.test_x, data.test_y)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return net_kwargs, state, acc


_loaded: dict[str, dict] = {}


def get_classifier(dataset, cache_dir=None, *, recipe: dict = RECIPE, verbose: bool = False) -> TrainedClassifier:
    """Load the dataset's classifier from the cache, training (and caching) it on a miss."""
    data = classifier_data(dataset)
    recipe_hash = sha256_json(recipe)
    key = sha256_json({"format": _FORMAT, "recipe": recipe_hash, "data": data.data_hash,
                       "in_channels": int(data.train_x.shape[1])})
    path = cache_root(cache_dir) / "classifiers" / f"clf-{key[:24]}.pt"
    with _lock:
        blob = _loaded.get(str(path))
        if blob is None and path.exists():
            try:
                blob = torch.load(path, map_location="cpu", weights_only=True)
                if blob.get("key") != key or sha256_state_dict(blob["state_dict"]) != blob["weights_sha256"]:
                    blob = None
            except Exception:  # corrupt/partial file: retrain and overwrite
                blob = None
        if blob is None:
            t0 = time.perf_counter()
            net_kwargs, state, acc = train_classifier(data, recipe)
            if verbose:
                print(f"trained {dataset.name} classifier in {time.perf_counter() - t0:.1f}s, "
                      f"test accuracy {acc:.4f}")
            blob = {"format": _FORMAT, "key": key, "recipe": recipe, "recipe_hash": recipe_hash,
                    "data_hash": data.data_hash, "net_kwargs": {**net_kwargs, "widths": list(net_kwargs["widths"])},
                    "state_dict": state, "test_accuracy": acc,
                    "weights_sha256": sha256_state_dict(state), "num_train": len(data.train_x),
                    "num_test": len(data.test_x)}
            atomic_torch_save(blob, path)
        _loaded[str(path)] = blob
    kw = dict(blob["net_kwargs"])
    kw["widths"] = tuple(kw["widths"])
    # per_channel comes from the dataset asking: digits and stacked-digits share the same weights.
    return TrainedClassifier(net_kwargs=kw, state_dict=blob["state_dict"], per_channel=data.per_channel,
                             recipe_hash=blob["recipe_hash"], data_hash=blob["data_hash"], key=key,
                             weights_sha256=blob["weights_sha256"], test_accuracy=float(blob["test_accuracy"]),
                             path=str(path))
