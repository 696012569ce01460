"""Loss terms computed from a :class:`~avvp.models.output.ParserOutput`, combined by weight.

HAN's objective is ``L = L_wsl + L_a + L_v``: binary cross-entropy of the fused, audio and visual
video-level probabilities against the weak labels, the modality targets optionally label-smoothed
(``y_m = (1 - delta_m) y + delta_m / 2``, so LS-V with delta 0.1 is HAN's ``0.9 y + 0.05``). Later methods
add terms to :data:`LOSS_TERMS` and name them in the config; the trainer only sees :class:`Objective`.

Lamba et al.'s objective ``L = L_wsl + lambda_g L_g - lambda_ad L_ad`` (eq. 2) is the terms
``{wsl: 1, audio: 0.6, visual: 0.6, modality_adversarial: 0.4}``: every weight is positive, and the minus sign
is the gradient reversal layer in front of the discriminator (docs/models.md). A term may also report
monitors (e.g. the discriminator's accuracy), logged beside the losses but never optimised.

VALOR's objective (Lai et al., NeurIPS 2023) is ``{wsl: 1, pseudo_audio: 1, pseudo_visual: 1}``: the fused
video-level term and, per modality, binary cross-entropy of the segment logits against a teacher's
segment-level pseudo-labels (:class:`SegmentPseudoLabelBCE`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch.nn import functional

from avvp.models.output import ParserOutput

if TYPE_CHECKING:
    from avvp.data.dataset import Batch


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelSmoothing(_Strict):
    """Which modality targets are smoothed, and by how much: ``y_m = (1 - delta_m) y + delta_m / 2``."""

    variant: Literal["No-LS", "LS-A", "LS-V", "LS-AV"] = "LS-V"
    audio: float = Field(0.1, ge=0.0, lt=1.0, description="delta_a, used by LS-A and LS-AV")
    visual: float = Field(0.1, ge=0.0, lt=1.0, description="delta_v, used by LS-V and LS-AV")

    def amount(self, modality: Literal["audio", "visual"]) -> float:
        """The smoothing ``delta`` applied to ``modality`` under this variant (0 when it is not smoothed)."""
        smoothed = {"No-LS": (), "LS-A": ("audio",), "LS-V": ("visual",), "LS-AV": ("audio", "visual")}
        return getattr(self, modality) if modality in smoothed[self.variant] else 0.0


class ContrastiveConfig(_Strict):
    """The segment-level audio-visual contrastive term: JoMoLD's ``L_nce`` (the defaults) or MA's ``L_CL``
    (``form: cross_entropy``, ``visual: projected``)."""

    temperature: float = Field(0.2, gt=0.0, description="divides the cosine similarities")
    smoothing: float = Field(0.1, ge=0.0, lt=1.0, description="target mass spread over the other segments")
    form: Literal["expected_probability", "cross_entropy"] = Field(
        "expected_probability",
        description="expected_probability: -log sum_u q p (JoMoLD's code); cross_entropy: -sum_u q log p (MA's)",
    )
    visual: Literal["aggregated", "projected"] = Field(
        "aggregated",
        description="the visual segments the aggregated audio ones are compared with: after the block "
        "(JoMoLD) or the projected ones before it (MA)",
    )


class LossConfig(_Strict):
    """Weighted loss terms (names from :data:`LOSS_TERMS`) and label smoothing (``loss:`` of a training config)."""

    terms: dict[str, float] = Field(default_factory=lambda: {"wsl": 1.0, "audio": 1.0, "visual": 1.0})
    label_smoothing: LabelSmoothing = Field(default_factory=LabelSmoothing)
    contrastive: ContrastiveConfig = Field(default_factory=ContrastiveConfig)
    clamp: float = Field(1e-7, ge=0.0, lt=0.5, description="probabilities are clamped to [clamp, 1-clamp]")

    @model_validator(mode="after")
    def _known_terms(self) -> LossConfig:
        unknown = sorted(set(self.terms) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(f"unknown loss term(s) {unknown}; known: {sorted(LOSS_TERMS)}")
        if not self.terms:
            raise ValueError("at least one loss term is needed")
        return self


class LossTerm(Protocol):
    """A scalar loss of a model output and its batch."""

    def __call__(self, output: ParserOutput, batch: Batch) -> torch.Tensor: ...


def smooth_labels(labels: torch.Tensor, amount: float) -> torch.Tensor:
    """Label smoothing towards 1/2 per class: ``(1 - amount) * labels + amount / 2``; any shape."""
    return (1.0 - amount) * labels + amount / 2.0


def modality_targets(batch: Batch, modality: str | None, smoothing: float) -> torch.Tensor:
    """Targets (B, C) of one modality's video-level probability (``None``: the fused one).

    The smoothed weak labels, set to 0 where a denoising procedure removed the label from ``modality``
    (``batch.dropped``), as JoMoLD's refined labels ``Y^a``, ``Y^v``.
    """
    targets = smooth_labels(batch.labels, smoothing)
    dropped = batch.dropped.get(modality) if modality is not None else None
    return targets if dropped is None else targets.masked_fill(dropped, 0.0)


def clamped_bce(prob: torch.Tensor, targets: torch.Tensor, clamp: float) -> torch.Tensor:
    """Mean binary cross-entropy of probabilities ``prob`` clamped to ``[clamp, 1-clamp]`` and computed in
    float32 (safe under mixed precision) against ``targets`` of the same shape."""
    return functional.binary_cross_entropy(prob.float().clamp(clamp, 1.0 - clamp), targets)


class VideoBCE:
    """Binary cross-entropy between a video-level probability of the output (B, C) and its targets.

    ``field`` names the :class:`ParserOutput` attribute and ``modality`` the targets
    (:func:`modality_targets`; ``None`` for the fused probability, whose targets are the weak labels);
    probabilities are clamped to ``[clamp, 1-clamp]`` and computed in float32 (safe under mixed
    precision). The mean runs over batch and classes.
    """

    def __init__(self, field: str, modality: str | None, smoothing: float, clamp: float) -> None:
        self.field = field
        self.modality = modality
        self.smoothing = smoothing
        self.clamp = clamp

    def __call__(self, output: ParserOutput, batch: Batch) -> torch.Tensor:
        """The loss of one batch (a scalar tensor)."""
        targets = modality_targets(batch, self.modality, self.smoothing)
        return clamped_bce(getattr(output, self.field), targets, self.clamp)


class SegmentContrastiveLoss:
    """A segment-level audio-visual contrastive term on the clip's own segments (JoMoLD's ``L_nce``, MA's
    ``L_CL``).

    For clip ``b`` and aggregated audio segment ``t``, ``p_t = softmax_u(cos(a_t, v_u) / temperature)`` over
    the clip's ``T`` visual segments (aggregated ones, or the projected ones with ``visual: projected``); the
    target ``q_t`` puts ``1 - smoothing`` on ``u = t`` and ``smoothing / (T - 1)`` on each other segment. The
    loss is ``-mean_{b,t} log(sum_u q_t[u] p_t[u])`` (``expected_probability``: the log of the expected
    target probability, as JoMoLD's code computes it) or ``-mean_{b,t} sum_u q_t[u] log p_t[u]``
    (``cross_entropy``: MA's label-smoothed cross-entropy).
    """

    def __init__(self, config: ContrastiveConfig) -> None:
        self.config = config

    def _visual(self, output: ParserOutput) -> torch.Tensor:
        if self.config.visual == "aggregated":
            return output.visual_embedding
        if output.projected_visual is None:
            raise ValueError(
                "loss.contrastive.visual 'projected' needs a model that outputs projected segments"
            )
        return output.projected_visual

    def __call__(self, output: ParserOutput, batch: Batch) -> torch.Tensor:
        """The loss of one batch (a scalar tensor)."""
        audio = functional.normalize(output.audio_embedding.float(), dim=-1)
        visual = functional.normalize(self._visual(output).float(), dim=-1)
        logits = audio @ visual.transpose(1, 2) / self.config.temperature  # (B, T, T)
        segments = logits.shape[-1]
        smoothing = self.config.smoothing
        eye = torch.eye(segments, device=logits.device, dtype=logits.dtype)
        target = eye * (1.0 - smoothing) + (1.0 - eye) * smoothing / (segments - 1)
        if self.config.form == "cross_entropy":
            return -(target * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
        return -torch.log((target * torch.softmax(logits, dim=-1)).sum(dim=-1)).mean()


class ModalityAdversarialLoss:
    """``L_ad``: binary cross-entropy of the modality discriminator's logits (B, T, 2) against the modality.

    Targets are 0 for the audio and 1 for the visual segment features (eq. 1 of Lamba et al.), averaged
    over batch, segments and the two modalities. Minimising it trains the discriminator; the gradient
    reversal layer of the head makes the encoder maximise it.
    """

    head = "modality_discriminator"

    def _logits(self, output: ParserOutput) -> torch.Tensor:
        return output.heads[self.head].float()

    @staticmethod
    def _targets(logits: torch.Tensor) -> torch.Tensor:
        return torch.tensor([0.0, 1.0], device=logits.device).expand_as(logits)

    def __call__(self, output: ParserOutput, batch: Batch) -> torch.Tensor:
        """The loss of one batch (a scalar tensor)."""
        logits = self._logits(output)
        return functional.binary_cross_entropy_with_logits(logits, self._targets(logits))

    def monitor(self, output: ParserOutput) -> dict[str, torch.Tensor]:
        """``modality_discriminator_accuracy``: share of segment features whose modality it tells right."""
        logits = self._logits(output).detach()
        correct = (logits > 0) == self._targets(logits).bool()
        return {"modality_discriminator_accuracy": correct.float().mean()}


class ModalitySeparatedLoss:
    """``L_ms``: the MSDU heads' video-level losses, ``BCE(p_a^ms, y_a) + BCE(p_v^ms, y_v)``.

    ``p^ms`` is the ``modality_separated`` head's output (B, 2, C) (audio, visual); each modality's targets
    are those of its main loss (:func:`modality_targets`: smoothed as configured, denoised labels removed).
    """

    head = "modality_separated"

    def __init__(self, smoothing: dict[str, float], clamp: float) -> None:
        self.smoothing = smoothing
        self.clamp = clamp

    def __call__(self, output: ParserOutput, batch: Batch) -> torch.Tensor:
        """The loss of one batch (a scalar tensor)."""
        prob = output.heads[self.head]
        return sum(
            clamped_bce(prob[:, i], modality_targets(batch, modality, self.smoothing[modality]), self.clamp)
            for i, modality in enumerate(("audio", "visual"))
        )


def pseudo_label_targets(batch: Batch, modality: str) -> torch.Tensor:
    """The segment-level targets (B, T, C) of ``modality``: the batch's pseudo-labels, set to 0 for every
    segment of a class a label procedure removed from that modality (``batch.dropped``: JoMoLD's denoising,
    MA's refined labels, co-training's small-loss selection)."""
    if modality not in batch.pseudo_labels:
        raise ValueError(f"the batch carries no {modality} pseudo-labels (set pseudo_labels in the config)")
    targets = batch.pseudo_labels[modality]
    dropped = batch.dropped.get(modality)
    return targets if dropped is None else targets.masked_fill(dropped[:, None, :], 0.0)


class SegmentPseudoLabelBCE:
    """VALOR's segment-level term of one modality: ``BCE_with_logits(frame_logits[:, :, m], P_m)``.

    ``frame_logits`` (B, T, 2, C) are the parser's segment logits (modality axis audio, visual), ``P_m``
    (B, T, C) the pseudo-labels of :func:`pseudo_label_targets`; the mean runs over batch, segments and
    classes, in float32.
    """

    def __init__(self, modality: Literal["audio", "visual"]) -> None:
        self.modality = modality
        self.index = ("audio", "visual").index(modality)

    def __call__(self, output: ParserOutput, batch: Batch) -> torch.Tensor:
        """The loss of one batch (a scalar tensor)."""
        if output.frame_logits is None:
            raise ValueError(f"loss term 'pseudo_{self.modality}' needs a model that outputs frame_logits")
        logits = output.frame_logits[:, :, self.index].float()
        return functional.binary_cross_entropy_with_logits(logits, pseudo_label_targets(batch, self.modality))


LOSS_TERMS: dict[str, tuple[str, Callable[[LossConfig], LossTerm]]] = {
    "wsl": ("L_wsl", lambda cfg: VideoBCE("global_prob", None, 0.0, cfg.clamp)),
    "audio": (
        "L_a",
        lambda cfg: VideoBCE("audio_prob", "audio", cfg.label_smoothing.amount("audio"), cfg.clamp),
    ),
    "visual": (
        "L_v",
        lambda cfg: VideoBCE("visual_prob", "visual", cfg.label_smoothing.amount("visual"), cfg.clamp),
    ),
    "modality_adversarial": ("L_ad", lambda cfg: ModalityAdversarialLoss()),
    "contrastive": (
        "L_nce",
        lambda cfg: SegmentContrastiveLoss(cfg.contrastive),
    ),
    "modality_separated": (
        "L_ms",
        lambda cfg: ModalitySeparatedLoss(
            {m: cfg.label_smoothing.amount(m) for m in ("audio", "visual")}, cfg.clamp
        ),
    ),
    "pseudo_audio": ("L_pseudo_a", lambda cfg: SegmentPseudoLabelBCE("audio")),
    "pseudo_visual": ("L_pseudo_v", lambda cfg: SegmentPseudoLabelBCE("visual")),
}
"""Config name -> (name in logs, factory from the loss config)."""

HEADS_NEEDED = {"modality_adversarial": "modality_discriminator", "modality_separated": "modality_separated"}
"""Loss terms that read a head's output -> the head the model must have."""
PSEUDO_LABEL_TERMS = ("pseudo_audio", "pseudo_visual")
"""Loss terms that train on segment-level pseudo-labels (``pseudo_labels`` of the training config)."""


class Objective:
    """The weighted sum of the configured loss terms."""

    def __init__(self, config: LossConfig) -> None:
        self.terms = [
            (LOSS_TERMS[name][0], weight, LOSS_TERMS[name][1](config))
            for name, weight in config.terms.items()
        ]

    @property
    def names(self) -> list[str]:
        """Log names of the terms, e.g. ``["L_wsl", "L_a", "L_v"]``."""
        return [name for name, _, _ in self.terms]

    def __call__(self, output: ParserOutput, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return the total loss and, detached, each unweighted term by log name and each monitor by name."""
        values = {name: term(output, batch) for name, _, term in self.terms}
        total = sum(weight * values[name] for name, weight, _ in self.terms)
        logged = {name: value.detach() for name, value in values.items()}
        for _, _, term in self.terms:
            if hasattr(term, "monitor"):
                logged.update(term.monitor(output))
        return total, logged
