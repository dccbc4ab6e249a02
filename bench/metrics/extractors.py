"""Feature extractors as torch-fidelity sees them, and batched feature extraction.

The classifier is registered with ``torch_fidelity.register_feature_extractor`` under
``ganbench-clf-<weights sha256[:16]>`` (``ganbench-clf3-...`` for stacked sets), so torch-fidelity's
caches can never mix features of two different classifiers. Its features:

* ``penultimate``: the ReLU'd FC layer before the logits (FID/KID/PR/DC). For stacked sets: the
  concatenation of the three channels' features, in channel order (3 x 128 = 384 dims).
* ``logits``: class logits (IS). For stacked sets: logits over the 1000 joint classes,
  ``l[100a+10b+c] = l0[a] + l1[b] + l2[c]``, whose softmax is the product of the per-channel
  softmaxes -- IS is then measured over the same 1000 modes that are counted.
"""
from __future__ import annotations

import threading

import torch

from .classifier import FEATURE_LAYER, TrainedClassifier
from .images import from_uint8

LOGITS_LAYER = "logits"
_lock = threading.RLock()


def _base_class():
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    class ClassifierFeatureExtractor(FeatureExtractorBase):
        """torch-fidelity wrapper of a TrainedClassifier; subclasses bind ``_classifier``."""

        _classifier: TrainedClassifier | None = None

        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, list(features_list))
            if self._classifier is None:
                raise ValueError("ClassifierFeatureExtractor must be subclassed with a bound classifier")
            self.per_channel = self._classifier.per_channel
            self.net = self._classifier.build("cpu")
            self.requires_grad_(False)
            self.eval()

        @staticmethod
        def get_provided_features_list():
            return FEATURE_LAYER, LOGITS_LAYER

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"isc": LOGITS_LAYER, "fid": FEATURE_LAYER, "kid": FEATURE_LAYER, "prc": FEATURE_LAYER}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 1, 16, 16, dtype=torch.uint8)

        def forward(self, x):
            if not (torch.is_tensor(x) and x.dtype == torch.uint8 and x.dim() == 4):
                raise ValueError("Expecting images as a uint8 torch.Tensor [B, C, H, W]")
            b = x.shape[0]
            xf = from_uint8(x)
            if self.per_channel:
                feats, logits = self.net(xf.reshape(b * x.shape[1], 1, *x.shape[2:]))
                feats = feats.reshape(b, -1)
                l3 = logits.reshape(b, x.shape[1], -1)
                k = l3.shape[-1]
                logits = (l3[:, 0, :, None, None] + l3[:, 1, None, :, None] + l3[:, 2, None, None, :]).reshape(b, k ** 3)
            else:
                feats, logits = self.net(xf)
            out = {FEATURE_LAYER: feats, LOGITS_LAYER: logits}
            return tuple(out[name] for name in self.features_list)

    return ClassifierFeatureExtractor


_base = None


def classifier_extractor_name(clf: TrainedClassifier) -> str:
    return f"ganbench-clf{'3' if clf.per_channel else ''}-{clf.weights_sha256[:16]}"


def register_classifier_extractor(clf: TrainedClassifier) -> str:
    """Register (once per process) a torch-fidelity extractor for ``clf``; returns its name."""
    global _base
    from torch_fidelity import register_feature_extractor
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    name = classifier_extractor_name(clf)
    with _lock:
        if name not in FEATURE_EXTRACTORS_REGISTRY:
            if _base is None:
                _base = _base_class()
            cls = type(f"ClassifierFeatureExtractor_{name.replace('-', '_')}", (_base,), {"_classifier": clf})
            register_feature_extractor(name, cls)
    return name


def create_classifier_extractor(clf: TrainedClassifier, cuda: bool, layers=(FEATURE_LAYER, LOGITS_LAYER)):
    """Register ``clf`` and build its extractor through torch-fidelity's own factory."""
    from torch_fidelity.utils import create_feature_extractor

    name = register_classifier_extractor(clf)
    return create_feature_extractor(name, list(layers), cuda=cuda, verbose=False)


def extract_features(extractor, images: torch.Tensor, batch_size: int, device: torch.device,
                     rgb: bool = False) -> dict[str, torch.Tensor]:
    """Run a torch-fidelity extractor over uint8 images [N, C, H, W]; returns {layer: float32 [N, D]} on CPU.

    ``rgb``: repeat single-channel images to 3 channels (Inception needs RGB).
    """
    names = list(extractor.get_requested_features_list())
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device, non_blocking=True)
            if rgb and x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            feats = extractor(x)
            for n, f in zip(names, feats):
                parts[n].append(f.detach().to("cpu", torch.float32))
    # clone() outside inference mode: ordinary tensors for whatever the caller does next
    return {n: torch.cat(p).clone() if p else torch.empty(0) for n, p in parts.items()}
