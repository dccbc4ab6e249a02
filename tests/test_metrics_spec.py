"""EvalSpec validation, metric names and directions."""
import pytest

from bench.metrics import METRIC_DIRECTIONS, METRIC_KEYS, EvalSpec, MetricError, available_metrics


def test_defaults():
    s = EvalSpec()
    assert s.metrics == ("fid", "is", "kid", "prc", "dc", "modes")
    assert s.extractor == "classifier" and s.num_samples == 2000 and s.stacked_samples == 26000


def test_unknown_metric_names_the_accepted_ones():
    with pytest.raises(MetricError) as e:
        EvalSpec(metrics=("fid", "fdi"))
    msg = str(e.value)
    assert "fdi" in msg and all(name in msg for name in available_metrics())
    assert "\n" not in msg


def test_unknown_extractor():
    with pytest.raises(MetricError, match="classifier"):
        EvalSpec(extractor="vgg16")


@pytest.mark.parametrize("kwargs", [
    {"num_samples": 0}, {"num_samples": 2.5}, {"ref_samples": 1}, {"stacked_samples": 0},
    {"seed": -1}, {"batch_size": 0}, {"metrics": ()}, {"num_samples": True},
])
def test_bad_values(kwargs):
    with pytest.raises(MetricError):
        EvalSpec(**kwargs)


def test_metrics_normalised_to_tuple():
    assert EvalSpec(metrics=["fid", "fid", "modes"]).metrics == ("fid", "modes")
    assert EvalSpec(metrics="kid").metrics == ("kid",)


def test_directions_cover_every_result_key():
    keys = {k for ks in METRIC_KEYS.values() for k in ks}
    assert keys == set(METRIC_DIRECTIONS)
    assert set(METRIC_DIRECTIONS.values()) == {"up", "down"}
    assert METRIC_DIRECTIONS["fid"] == "down" and METRIC_DIRECTIONS["is_mean"] == "up"
    assert METRIC_DIRECTIONS["modes"] == "up" and METRIC_DIRECTIONS["reverse_kl"] == "down"
    assert METRIC_DIRECTIONS["high_quality"] == "up"


def test_available_metrics_by_kind():
    assert available_metrics("2d") == ("modes",)
    assert available_metrics("image") == available_metrics()
    with pytest.raises(MetricError):
        available_metrics("video")
