"""The one error type of the metrics layer."""
from __future__ import annotations


class MetricError(ValueError):
    """A metrics problem the user can fix (unknown metric/extractor, missing weights, bad sampler).

    The message is always ONE line, suitable for printing without a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
