"""The plausibility checks experts run before tuning (PRACTICE.md, "Set-up habits").

1. The initial loss should be near ln(C): a freshly initialised classifier is close to
   uniform over C classes. Far above means a bad init or unscaled inputs; far below means
   the labels leak or the loss is wrong.
2. The model must be able to overfit one small batch. If it cannot, suspect the code or
   the data, not the hyperparameters.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

# A relative error of 50% around ln(C) still accepts the small deviations that real inits
# show (e.g. 2.4 vs ln(10)=2.30) while catching the order-of-magnitude errors we look for.
INITIAL_LOSS_TOLERANCE = 0.5
OVERFIT_BATCH = 32
OVERFIT_STEPS = 200
OVERFIT_TARGET = 0.99


@dataclass(frozen=True)
class SanityReport:
    initial_loss: float
    expected_loss: float
    overfit_accuracy: float
    overfit_steps: int

    @property
    def initial_ok(self) -> bool:
        return math.isfinite(self.initial_loss) and \
            abs(self.initial_loss - self.expected_loss) <= INITIAL_LOSS_TOLERANCE * self.expected_loss

    @property
    def overfit_ok(self) -> bool:
        return self.overfit_accuracy >= OVERFIT_TARGET

    @property
    def passed(self) -> bool:
        return self.initial_ok and self.overfit_ok

    def summary(self) -> str:
        init = "ok" if self.initial_ok else "SUSPICIOUS"
        fit = "ok" if self.overfit_ok else "FAILED"
        return (f"initial loss {self.initial_loss:.3f} vs ln(C)={self.expected_loss:.3f} ({init}); "
                f"one batch of {OVERFIT_BATCH} overfit to accuracy {self.overfit_accuracy:.2f} "
                f"in {self.overfit_steps} steps ({fit})")


def sanity_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 n_classes: int) -> SanityReport:
    """Run both checks on a copy of `model`, leaving the real model untouched."""
    probe = copy.deepcopy(model)
    xb, yb = x[:OVERFIT_BATCH], y[:OVERFIT_BATCH]
    probe.eval()
    with torch.no_grad():
        initial = float(nn.functional.cross_entropy(probe(x[:512]), y[:512]))
    # Without dropout and with a fixed, known-good optimizer: the question is whether the
    # model *can* fit, not whether the configured hyperparameters do. Train mode (not eval)
    # because cuDNN RNNs only run backward in train mode.
    probe.train()
    for module in probe.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        elif isinstance(module, nn.RNNBase):
            module.dropout = 0.0
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    accuracy, taken = 0.0, 0
    for taken in range(1, OVERFIT_STEPS + 1):  # noqa: B007 (the count is reported)
        logits = probe(xb)
        loss = nn.functional.cross_entropy(logits, yb)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        accuracy = float((logits.argmax(1) == yb).float().mean())
        if accuracy >= 1.0:
            break
    return SanityReport(initial, math.log(n_classes), accuracy, taken)
