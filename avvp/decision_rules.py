"""Names of the decision rules that turn probabilities into segment events (applied by
:func:`avvp.inference.decide`); a light module, so configs can name a rule without importing torch."""

from __future__ import annotations

from typing import Literal

FUSED_RULE = "fused"
"""The published HAN rule: segments gated by the fused video-level probability, for both modalities."""
MODALITY_RULE = "modality"
"""JoMoLD's rule: each modality's segments gated by its own video-level probability."""
DECISION_RULES = (FUSED_RULE, MODALITY_RULE)
DecisionRule = Literal["fused", "modality"]
PUBLISHED_THRESHOLD = 0.5
"""The segment and video thresholds every paper uses (and checkpoints that record none are read with)."""
DECISION_FILE = "decision.json"
"""Written beside predictions by ``avvp predict``: the decision rule, thresholds and attention mode used."""
