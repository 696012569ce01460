"""The ``avvp pretrain`` config: a YAML file validated like the training config (unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from avvp.errors import InputError
from avvp.models.avg_encoder import AVGEncoderConfig
from avvp.pretraining.losses import Variant
from avvp.training.config import OptimizerConfig, RunSettings, _Strict


class GroundingLossConfig(_Strict):
    """Which grounding pairs enter (``uni``: u-avg, ``cross``: x-avg, ``multi``: m-avg) and the margins."""

    variant: Variant = Field("multi", description="uni (eq. 1), cross (eq. 2) or multi (eq. 3)")
    positive_margin: float = Field(0.8, ge=-1.0, le=1.0, description="p: positive pairs cost [p - cos]_+")
    negative_margin: float = Field(0.2, ge=-1.0, le=1.0, description="n: negative pairs cost [cos - n]_+")

    @model_validator(mode="after")
    def _ordered_margins(self) -> GroundingLossConfig:
        if self.negative_margin > self.positive_margin:
            raise ValueError(
                f"negative_margin {self.negative_margin} exceeds positive_margin {self.positive_margin}"
            )
        return self


class PretrainConfig(RunSettings):
    """Everything one AVG pretraining run needs (defaults: docs/pretraining.md)."""

    graphs: Path | None = Field(None, description="grounding graphs of 'avvp build-graphs'")
    clips: list[Path] = Field(
        default_factory=list, description="split CSVs restricting the clips (default: every clip in graphs)"
    )
    encoder: AVGEncoderConfig = Field(default_factory=AVGEncoderConfig)
    loss: GroundingLossConfig = Field(default_factory=GroundingLossConfig)
    optimizer: OptimizerConfig = Field(
        default_factory=lambda: OptimizerConfig(lr=1e-4, step_size=10, gamma=0.5)
    )
    epochs: int = Field(20, gt=0)
    batch_size: int = Field(128, gt=0)

    def require_paths(self, source: str) -> None:
        """Raise :class:`InputError` naming ``source`` unless features, graphs and output_dir are set."""
        super().require_paths(source)
        if self.graphs is None:
            raise InputError(f"{source}: 'graphs' is not set; give it in the config or with --graphs")
