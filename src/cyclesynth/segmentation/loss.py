"""The U-Net's training loss: cross-entropy with class weights [1, vessel_weight], leaving out
the pixels labeled :data:`IGNORE_INDEX` (the pseudo-labels' band of doubt)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Label value left out of the loss (an ignored pseudo-label pixel); labels are 0, 1 or this.
IGNORE_INDEX = 255


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, vessel_weight: float) -> torch.Tensor:
    """Cross-entropy with class weights [1, vessel_weight], weighted mean over all pixels but
    the ignored ones.

    ``logits`` (N, 2, H, W), ``labels`` (N, H, W) with 0 = background, 1 = vessel and
    :data:`IGNORE_INDEX` (255) = left out of the loss (numerator and denominator alike).
    """
    weight = torch.tensor([1.0, float(vessel_weight)], dtype=logits.dtype, device=logits.device)
    return F.cross_entropy(logits, labels.long(), weight=weight, ignore_index=IGNORE_INDEX)
