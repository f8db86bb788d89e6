"""Pure functions on measured results: barrier height, convexity gap, area under the curve.

No torch, no data: metrics take plain sequences of numbers, as stored in the results store.
"""

from __future__ import annotations

from weightscape.metrics.curves import auc, barrier_height, convexity_gap

__all__ = ["auc", "barrier_height", "convexity_gap"]
