"""A soft vote of trained models (report 001 averaged CNN/ResNet50/ConvNeXt at 0.45/0.45/0.10)."""
from __future__ import annotations

import torch
import torch.nn as nn


class SoftVote(nn.Module):
    """Weighted mean of member probabilities; forward returns its log (acts as logits). A member
    trained with test-time flips votes with its logits averaged over the image and its mirror,
    as it does on its own."""

    def __init__(self, members: list[nn.Module], weights: list[float], flips: list[bool] | None = None):
        super().__init__()
        self.members = nn.ModuleList(members)
        w = torch.tensor(weights, dtype=torch.float32)
        self.register_buffer("weights", w / w.sum())
        self.flips = list(flips or [False] * len(members))

    def unflipped(self) -> SoftVote:
        """The same vote with each member seeing the image once: what attributions explain (a
        member's second, mirrored pass would overwrite the layer activations Grad-CAM reads)."""
        return SoftVote(list(self.members), self.weights.tolist())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = 0
        for w, m, flip in zip(self.weights, self.members, self.flips):
            logits = m(x).float()
            if flip:
                logits = (logits + m(x.flip(-1)).float()) / 2
            probs = probs + w * logits.softmax(1)
        return probs.clamp_min(1e-12).log()
