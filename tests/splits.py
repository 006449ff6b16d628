"""The result keys of quick runs, whose evaluation splits are subsets (``test[:1000]``)."""

import re


def unsliced(metrics: dict) -> dict:
    """``metrics`` with ``model/metric/test[:1000]`` keyed as ``model/metric/test`` (the same for
    ``validation``), so a test can name a result without its run's subset size."""
    return {re.sub(r"/(test|validation)\[[^\]]*\]$", r"/\1", k): v for k, v in metrics.items()}
