"""weightscape: the geometry of the weight space between finetuned language models.

Every point the toolkit evaluates is a combination of anchor checkpoints (see ARCHITECTURE.md in
the shared notes): paths, planes, hulls and centroids are coefficient vectors over anchors, and one
engine turns coefficients into weights and weights into losses.

This top-level module stays light (no torch import) so that ``weightscape --help`` is instant.
"""

from __future__ import annotations

__version__ = "0.1.0"
