"""The training config: a YAML file validated by pydantic (unknown keys and wrong types are errors).

A config may build on another with ``extends: <file>`` (relative to its own folder; its settings are merged
over the other's). Paths in the config are taken relative to the current directory. Command-line overrides
(``--set key.sub=value``) are applied to the parsed YAML before validation, so they are checked the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from avvp.config_files import deep_merge, read_config_file
from avvp.data.annotations import GT_AUDIO, GT_VISUAL, SPLIT_FILES
from avvp.data.features import FEATURE_SHAPES
from avvp.decision_rules import PUBLISHED_THRESHOLD, DecisionRule
from avvp.errors import InputError
from avvp.models import ModelConfig
from avvp.training.co_training import CoTrainingConfig
from avvp.training.denoising import DenoisingConfig
from avvp.training.gradient_modulation import GradientModulationConfig
from avvp.training.losses import HEADS_NEEDED, PSEUDO_LABEL_TERMS, LossConfig

DEFAULT_SPLIT_FILES = {
    "train": SPLIT_FILES["train"],
    "val": SPLIT_FILES["val"],
    "eval_audio": GT_AUDIO,
    "eval_visual": GT_VISUAL,
}
"""File names looked up in ``annotations_dir`` for splits not given explicitly."""

ConfigModel = TypeVar("ConfigModel", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitFiles(_Strict):
    """Explicit label files; any left out default to the LLP file name in ``annotations_dir``."""

    train: Path | None = None
    val: Path | None = None
    eval_audio: Path | None = None
    eval_visual: Path | None = None


class OptimizerConfig(_Strict):
    """Optimiser, learning-rate schedule and gradient clipping; the defaults are HAN's Adam with a step
    schedule (``lr * gamma ** ((epoch - 1) // step_size)`` at 1-based ``epoch``) and no clipping.

    ``schedule: warmup_cosine`` is VALOR's per-epoch schedule (docs/training.md): ``lr * e / warmup_epochs``
    for ``e < warmup_epochs``, then ``lr_min + (lr - lr_min) (1 + cos(pi (e - warmup_epochs) / (epochs -
    warmup_epochs))) / 2``.
    """

    name: Literal["adam", "adamw"] = Field("adam", description="adam (L2 weight decay) or adamw (decoupled)")
    lr: float = Field(3e-4, gt=0.0, description="the learning rate (the peak of warmup_cosine)")
    weight_decay: float = Field(0.0, ge=0.0)
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam's (beta1, beta2)")
    eps: float = Field(1e-8, gt=0.0)
    schedule: Literal["step", "warmup_cosine"] = Field("step", description="step | warmup_cosine")
    step_size: int = Field(10, gt=0, description="step: epochs between learning-rate drops")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="step: factor of each drop")
    warmup_epochs: int = Field(10, ge=0, description="warmup_cosine: epochs of linear warm-up")
    lr_min: float = Field(0.0, ge=0.0, description="warmup_cosine: the learning rate of the last epoch")
    grad_clip: float | None = Field(
        None, gt=0.0, description="largest L2 norm of each network's gradients (null: no clipping)"
    )

    @model_validator(mode="after")
    def _betas_and_floor(self) -> OptimizerConfig:
        if not all(0.0 <= beta < 1.0 for beta in self.betas):
            raise ValueError(f"betas {list(self.betas)}: each must lie in [0, 1)")
        if self.schedule == "warmup_cosine" and self.lr_min > self.lr:
            raise ValueError(f"lr_min {self.lr_min} exceeds lr {self.lr}: the cosine would rise")
        return self


class Thresholds(_Strict):
    """Decision rule: a segment is positive where its probability and its class's video probability pass.

    ``rule`` says which video probability: ``fused`` (HAN's fused probability, both modalities) or
    ``modality`` (each modality's own, as JoMoLD); see :func:`avvp.inference.decide`.
    """

    rule: DecisionRule = Field("fused", description="fused | modality")
    segment: float = Field(PUBLISHED_THRESHOLD, gt=0.0, lt=1.0)
    video: float = Field(PUBLISHED_THRESHOLD, ge=0.0, lt=1.0)


class Selection(_Strict):
    """Model selection: the validation metric whose best epoch is kept as ``best.pt`` (ties: later epoch)."""

    level: Literal["segment", "event"] = "segment"
    metric: Literal["audio", "visual", "audio_visual", "type", "event"] = Field(
        "type", description="audio, visual, audio_visual, type (Type@AV) or event (Event@AV)"
    )

    @property
    def name(self) -> str:
        """How the selection is written in logs and files, e.g. ``segment Type@AV``."""
        names = {"audio": "audio", "visual": "visual", "audio_visual": "audio-visual"}
        return f"{self.level} {names.get(self.metric, self.metric.capitalize() + '@AV')}"


class RunSettings(_Strict):
    """Where a training run reads and writes, and how it runs: shared by ``avvp train`` and ``avvp pretrain``."""

    features: Path | list[Path] | dict[str, Path] | None = Field(
        None, description="one feature store, a list of stores, or one store per kind"
    )
    output_dir: Path | None = None
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    epochs: int = Field(40, gt=0)
    batch_size: int = Field(16, gt=0)
    seed: int = 1
    deterministic: bool = Field(False, description="deterministic kernels (slower on CUDA)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, gt=0, description="CPU threads for torch (default: torch's own choice)")
    mixed_precision: bool = Field(True, description="float16 autocast on CUDA (ignored on CPU)")
    in_memory: bool = Field(True, description="load whole splits into memory; false reads each batch lazily")
    num_workers: int = Field(0, ge=0, description="DataLoader workers for lazy loading")

    @model_validator(mode="after")
    def _feature_kinds(self) -> RunSettings:
        if isinstance(self.features, dict):
            unknown = sorted(set(self.features) - set(FEATURE_SHAPES))
            if unknown:
                raise ValueError(f"features: unknown kind(s) {unknown}; known: {sorted(FEATURE_SHAPES)}")
        return self

    def require_paths(self, source: str) -> None:
        """Raise :class:`InputError` naming ``source`` unless features and output_dir are set."""
        for name, flag in (("features", "--features"), ("output_dir", "--output-dir")):
            if getattr(self, name) is None:
                raise InputError(f"{source}: '{name}' is not set; give it in the config or with {flag}")


class TrainConfig(RunSettings):
    """Everything one training run needs; defaults reproduce the published HAN recipe."""

    annotations_dir: Path | None = Field(None, description="directory with the LLP label files")
    splits: SplitFiles = Field(default_factory=SplitFiles)
    pretrained_encoder: Path | None = Field(
        None, description="encoder.pt of 'avvp pretrain': initial weights of model.input_encoder"
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    selection: Selection = Field(default_factory=Selection)
    denoising: DenoisingConfig | None = Field(
        None, description="JoMoLD's joint-modal label denoising of the modality targets (null: none)"
    )
    gradient_modulation: GradientModulationConfig | None = Field(
        None,
        description="paper 004's dynamic gradient modulation of the modality-specific parameters (null: none)",
    )
    refined_labels: Path | None = Field(
        None,
        description="labels removed per modality by 'avvp refine-labels' (MA's label refinement), left out "
        "of the modality targets (null: none)",
    )
    co_training: CoTrainingConfig | None = Field(
        None,
        description="Co-teaching or JoCoR: two networks and small-loss label selection (null: one network)",
    )
    pseudo_labels: Path | None = Field(
        None,
        description="segment-level pseudo-labels of the training clips (pseudo_labels.h5 of 'avvp "
        "pseudo-labels', e.g. VALOR's), the targets of the loss terms pseudo_audio and pseudo_visual",
    )
    eval_batch_size: int = Field(256, gt=0)
    attention_bins: int = Field(20, gt=1, description="histogram bins of the attention diagnostics")

    @property
    def peer_model(self) -> ModelConfig:
        """The second network's model config of a co-training run: ``model`` with ``co_training.peer_model``
        merged in (``model`` itself without co-training)."""
        if self.co_training is None or not self.co_training.peer_model:
            return self.model
        return ModelConfig.model_validate(
            deep_merge(self.model.model_dump(mode="json"), self.co_training.peer_model)
        )

    @model_validator(mode="after")
    def _heads_of_loss_terms(self) -> TrainConfig:
        try:
            models = {"model": self.model, "co_training.peer_model": self.peer_model}
        except ValidationError as err:
            problem = err.errors()[0]
            where = ".".join(["co_training.peer_model", *map(str, problem["loc"])])
            message = "unknown key" if problem["type"] == "extra_forbidden" else problem["msg"]
            raise ValueError(f"{where}: {message.removeprefix('Value error, ')}") from None
        for where, model in models.items():
            for term, head in HEADS_NEEDED.items():
                if term in self.loss.terms and getattr(model.heads, head) is None:
                    raise ValueError(f"loss term '{term}' needs the head {where}.heads.{head}")
            if model.heads.modality_separated is not None and "modality_separated" not in self.loss.terms:
                raise ValueError(
                    f"{where}.heads.modality_separated is trained only by the loss term 'modality_separated': "
                    "add it to loss.terms (e.g. modality_separated: 1.0)"
                )
        return self

    @model_validator(mode="after")
    def _one_label_noise_procedure(self) -> TrainConfig:
        if self.co_training is not None and self.denoising is not None:
            raise ValueError(
                "co_training and denoising are two label-noise procedures (small-loss selection by two "
                "networks, JoMoLD's joint-modal rule by one): choose one"
            )
        if self.co_training is not None and self.refined_labels is not None:
            raise ValueError("refined_labels trains one network; co_training trains two: choose one")
        return self

    @model_validator(mode="after")
    def _pseudo_labels_and_their_terms(self) -> TrainConfig:
        terms = sorted(set(self.loss.terms) & set(PSEUDO_LABEL_TERMS))
        if terms and self.pseudo_labels is None:
            raise ValueError(
                f"loss term(s) {terms} train on segment-level pseudo-labels: set pseudo_labels to the "
                "pseudo_labels.h5 written by 'avvp pseudo-labels'"
            )
        if self.pseudo_labels is not None and not terms:
            raise ValueError(
                "pseudo_labels is read only by the loss terms pseudo_audio and pseudo_visual: add them to "
                "loss.terms (e.g. pseudo_audio: 1.0, pseudo_visual: 1.0) or remove pseudo_labels"
            )
        return self

    @model_validator(mode="after")
    def _encoder_for_pretrained_weights(self) -> TrainConfig:
        if self.pretrained_encoder is not None and self.model.input_encoder is None:
            raise ValueError("pretrained_encoder needs model.input_encoder (the encoder its weights go into)")
        return self

    def label_files(self) -> dict[str, Path]:
        """The label files the run reads, by config key: ``splits.<name>`` for each split, and
        ``pseudo_labels``, ``refined_labels`` and ``<procedure>.noise_ratios`` where set."""
        files = {f"splits.{split}": self.split_file(split) for split in DEFAULT_SPLIT_FILES}
        optional = {
            "pseudo_labels": self.pseudo_labels,
            "refined_labels": self.refined_labels,
            "denoising.noise_ratios": self.denoising.noise_ratios if self.denoising else None,
            "co_training.noise_ratios": self.co_training.noise_ratios if self.co_training else None,
        }
        files.update({key: path for key, path in optional.items() if path is not None})
        return files

    def split_file(self, split: str) -> Path:
        """The label file of ``split`` (train, val, eval_audio, eval_visual)."""
        explicit = getattr(self.splits, split)
        if explicit is not None:
            return explicit
        if self.annotations_dir is None:
            raise InputError(f"config: no file for split '{split}': set annotations_dir or splits.{split}")
        return self.annotations_dir / DEFAULT_SPLIT_FILES[split]


OVERRIDDEN_KEYS = ("output_dir", "epochs", "device", "threads")
"""Config keys that have an option of the same name in 'avvp train' and 'avvp pretrain'."""
COMMAND_LINE_OPTIONS = (*OVERRIDDEN_KEYS, "features", "annotations_dir", "deterministic")
"""Config keys that 'avvp train' or 'avvp pretrain' also take as an option of their own (``--epochs``, ...)."""


def _option(key: str, value: Any) -> str:
    """How an override was given on the command line: ``--set model.num_heads=3`` or ``--epochs 0``."""
    if key in COMMAND_LINE_OPTIONS:
        given = " ".join(map(str, value)) if isinstance(value, list) else "" if value is True else value
        return f"--{key.replace('_', '-')} {given}".rstrip()
    return f"--set {key}={value}"


def _overrides_of(where: str, message: str, overrides: dict[str, Any]) -> list[str]:
    """The overrides at fault in the problem ``message`` at dotted path ``where``: those that set it or a
    mapping around it, and those that set a key inside it which the message names (a check of a whole
    section, e.g. ``model: num_heads 3 does not divide d_model 512``)."""
    return [
        _option(key, value)
        for key, value in overrides.items()
        if key == where
        or where.startswith(f"{key}.")
        or (key.startswith(f"{where}.") and key.rsplit(".", 1)[-1] in message)
    ]


def _format_errors(source: str, err: ValidationError, overrides: dict[str, Any]) -> str:
    """One line naming every problem; led by the command-line overrides when they set every key at fault
    (the file is then named in brackets), else by ``source``."""
    lines, options = [], []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and nesting)"
        lines.append(f"{where}: {message}")
        options.append(_overrides_of(where, message, overrides))
    if all(options):
        given = ", ".join(dict.fromkeys(option for found in options for option in found))
        return f"{given}: invalid config (over {source}): " + "; ".join(lines)
    return f"{source}: invalid config: " + "; ".join(lines)


def validate_settings(schema: type[ConfigModel], raw: dict[str, Any], source: str) -> ConfigModel:
    """``raw`` settings validated as ``schema``; :class:`InputError` naming ``source`` and every problem."""
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise InputError(_format_errors(source, err, {})) from None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=[1, 2]"]`` into ``{"a.b": 1, "c": [1, 2]}`` (values are read as YAML)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected KEY=VALUE, e.g. --set epochs=2")
        try:
            parsed[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise InputError(f"--set {item!r}: value is not valid YAML ({err})") from None
    return parsed


def _apply(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InputError(f"--set {dotted}: '{part}' is not a mapping in the config")
        node = child
    node[leaf] = value


def load_validated(
    schema: type[ConfigModel], path: str | Path | None, overrides: dict[str, Any] | None = None
) -> ConfigModel:
    """Read a YAML config and validate it as ``schema``; ``overrides`` maps dotted keys to values applied first.

    The file may build on another (``extends: han.yaml``, relative to its folder). ``path=None`` starts
    from the defaults. Raises :class:`InputError` naming every problem and the file, or the overrides
    (``--set KEY=VALUE``) when they set the keys at fault.
    """
    source = str(path) if path is not None else "config"
    raw = read_config_file(path) if path is not None else {}
    for dotted, value in (overrides or {}).items():
        _apply(raw, dotted, value)
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise InputError(_format_errors(source, err, overrides or {})) from None


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read and validate a YAML training config (see :func:`load_validated`)."""
    return load_validated(TrainConfig, path, overrides)
