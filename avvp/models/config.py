"""The validated config of a parser: which parts it is built from and their sizes (``model:`` in a training config).

A parser is an optional input encoder -> input projections -> an attention block -> attentive MMIL pooling -> optional heads. The defaults
are the published HAN; docs/models.md lists the configuration of every method and a diagram.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from avvp.data.labels import NUM_SEGMENTS
from avvp.models.attention import AttentionKind
from avvp.models.avg_encoder import AVGEncoderConfig

Aggregation = Literal["self", "cross"]
StreamOrder = Literal["parallel", "sequential"]
NormPlacement = Literal["post", "pre"]
BlockKind = Literal["han", "base", "ave", "avslowfast"]
ATTENTION_BLOCKS = ("han", "base")
"""The blocks built of attention layers (``attention``, ``num_heads``, ``feedforward`` and ``dropout`` apply
to them; the recurrent AVE and convolutional AVSlowFast blocks have their own structure)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModalitySwitch(_Strict):
    """A switch per modality."""

    audio: bool = False
    visual: bool = False


class ModalityRates(_Strict):
    """A dropout rate per modality."""

    audio: float = Field(0.0, ge=0.0, lt=1.0)
    visual: float = Field(0.0, ge=0.0, lt=1.0)


class DiscriminatorConfig(_Strict):
    """The adversarial modality discriminator head (Lamba et al., section 3.1)."""

    hidden: int = Field(512, gt=0, description="hidden width of the discriminator's two-layer MLP")
    reversal: float = Field(
        1.0,
        gt=0.0,
        description="gradient reversal coefficient: the encoder receives -reversal x the gradient",
    )


class ModalitySeparatedConfig(_Strict):
    """The modality-separated decision unit (MSDU, paper 004 section III-C, eq. 11): per modality a temporal
    attention and a classifier on the projected segments, to measure the modality imbalance."""

    detach: bool = Field(
        False,
        description="false: the MSDU loss also trains the input projections (the paper shares psi); "
        "true: it trains the MSDU heads only",
    )


class HeadsConfig(_Strict):
    """Optional heads on the parser's segment features; ``null`` leaves a head out."""

    modality_discriminator: DiscriminatorConfig | None = None
    modality_separated: ModalitySeparatedConfig | None = None


class InputEncoderConfig(AVGEncoderConfig):
    """An AVG encoder in front of the projections (Lamba et al., section 4); its weights come from
    ``avvp pretrain`` (``pretrained_encoder`` in the training config)."""

    trainable: bool = Field(
        False, description="false: frozen pretrained embeddings (Pretrained); true: fine-tuned (Pretrain E2E)"
    )


class InputsConfig(_Strict):
    """The feature kind each input projection reads (defaults: LLP's released features, as HAN).

    ``clip`` (CLIP ViT-L/14 frame embeddings, 10 x 768) replaces ResNet152 and ``clap`` (CLAP HTS-AT
    feature maps, 64 x 768) replaces VGGish, as in VALOR++; R(2+1)D stays the motion input.
    """

    audio: Literal["vggish", "clap"] = "vggish"
    visual: Literal["resnet152", "clip"] = "resnet152"
    motion: Literal["r2plus1d"] = "r2plus1d"

    def kinds(self) -> tuple[str, str, str]:
        """The feature kinds read, in the order audio, visual, motion."""
        return self.audio, self.visual, self.motion


class AVSlowFastConfig(_Strict):
    """The AVSlowFast block's pathway settings (Xiao et al. 2020, adapted to per-second features)."""

    alpha: int = Field(
        2, gt=0, description="temporal stride of the Slow pathway (segments per Slow step; divides 10)"
    )
    beta: float = Field(0.125, gt=0.0, le=1.0, description="width of the Fast pathway over d_model")
    stages: int = Field(
        2, gt=0, description="residual stages per pathway, each followed by lateral connections"
    )
    drop_pathway: float = Field(
        0.8,
        ge=0.0,
        lt=1.0,
        description="DropPathway: probability of training a step without the audio-to-visual connections",
    )


class ParserConfig(_Strict):
    """Parts and sizes of a :class:`~avvp.models.parser.Parser` (defaults: the published HAN)."""

    block: BlockKind = Field(
        "han",
        description="han: one shared HAN layer; base: Lamba et al.'s Base block; ave: AVE's audio-guided "
        "attention, BiLSTMs and residual fusion; avslowfast: Audio, Slow and Fast pathways with lateral "
        "connections",
    )
    attention: AttentionKind = Field("dot", description="dot: scaled dot-product; gcaa: global context-aware")
    d_model: int = Field(512, gt=0, description="width of the projected features and of the block")
    num_heads: int = Field(1, gt=0, description="attention heads (must divide d_model)")
    feedforward: int = Field(512, gt=0, description="hidden width of the feed-forward sublayers")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout in attention and feed-forward")
    num_layers: int = Field(
        1, gt=0, description="stacked layers of the han block, each with its own weights (VALOR+: 4)"
    )
    stream_order: StreamOrder = Field(
        "parallel",
        description="han block: parallel (HAN: both streams of a layer read its inputs) or sequential "
        "(VALOR: a layer's visual update attends over the audio stream that layer already updated)",
    )
    norm: NormPlacement = Field(
        "post",
        description="han block: post (HAN: LayerNorm after each residual sum) or pre (VALOR's pre_norm: "
        "LayerNorm before each sublayer, and a final LayerNorm per stream after the last layer)",
    )
    audio_aggregation: Aggregation = Field("cross", description="A_cross (eq. 1) or A_self (eq. 8)")
    visual_aggregation: Aggregation = Field("cross", description="V_cross (eq. 2) or V_self (eq. 7)")
    skip: ModalitySwitch = Field(
        default_factory=ModalitySwitch,
        description="skip connection around a modality's cross-modal attention",
    )
    segment_dropout: ModalityRates = Field(
        default_factory=ModalityRates,
        description="dropout on each modality's aggregated segments before the MMIL pooling (JoMoLD: visual 0.5)",
    )
    heads: HeadsConfig = Field(default_factory=HeadsConfig)
    inputs: InputsConfig = Field(
        default_factory=InputsConfig, description="the feature kind each input projection reads"
    )
    input_encoder: InputEncoderConfig | None = Field(
        None, description="AVG encoder replacing the VGGish and ResNet152 inputs by its snippet embeddings"
    )
    avslowfast: AVSlowFastConfig | None = Field(
        None, description="settings of the avslowfast block (null: its defaults); only with block avslowfast"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ParserConfig:
        if self.d_model % self.num_heads:
            raise ValueError(f"num_heads {self.num_heads} does not divide d_model {self.d_model}")
        if self.block not in ATTENTION_BLOCKS and self.attention != "dot":
            raise ValueError(
                f"attention '{self.attention}' needs block han or base (block {self.block} has none)"
            )
        if self.avslowfast is not None and self.block != "avslowfast":
            raise ValueError(f"model.avslowfast configures block avslowfast, not block '{self.block}'")
        if self.block == "ave" and self.d_model % 2:
            raise ValueError(
                f"block ave needs an even d_model (two LSTM directions of d_model / 2), not {self.d_model}"
            )
        if self.block == "avslowfast":
            self._check_avslowfast()
        self._check_han_options()
        if self.input_encoder is not None and self.inputs != InputsConfig():
            raise ValueError(
                "model.input_encoder reads VGGish and ResNet152 features: it needs the default model.inputs "
                f"(audio vggish, visual resnet152), not audio {self.inputs.audio}, visual {self.inputs.visual}"
            )
        for modality in ("audio", "visual"):
            if not getattr(self.skip, modality):
                continue
            if self.block != "base":
                raise ValueError(
                    f"skip.{modality} needs block 'base' (HAN has no separate self-attended signal)"
                )
            if getattr(self, f"{modality}_aggregation") != "cross":
                raise ValueError(
                    f"skip.{modality} needs {modality}_aggregation 'cross' (it skips that attention)"
                )
        return self

    def _check_han_options(self) -> None:
        if self.block == "han":
            return
        changed = [
            f"{name} {getattr(self, name)!r}"
            for name, default in (("num_layers", 1), ("stream_order", "parallel"), ("norm", "post"))
            if getattr(self, name) != default
        ]
        if changed:
            raise ValueError(
                f"{', '.join(changed)}: these settings shape the stacked layers of block han (VALOR's "
                f"encoder), not block '{self.block}'; leave them at their defaults (1, parallel, post)"
            )

    def _check_avslowfast(self) -> None:
        settings = self.avslowfast or AVSlowFastConfig()
        if NUM_SEGMENTS % settings.alpha:
            raise ValueError(f"avslowfast.alpha {settings.alpha} does not divide the {NUM_SEGMENTS} segments")
        if self.audio_aggregation != "self":
            raise ValueError(
                "block avslowfast fuses audio into the visual pathways only (A->FS lateral connections): "
                "set audio_aggregation: self"
            )
