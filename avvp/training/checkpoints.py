"""Checkpoint files: the native format, full training state for ``--resume``, official HAN, JoMoLD and VALOR
files.

Native model checkpoint (``best.pt``): ``{"format": "avvp-parser/2", "model": <model config>,
"state_dict": ..., "epoch": int, "metrics": dict, "features": {kind: identity}, "decision": {"rule",
"segment", "video"}}``; ``features`` holds the identity of each kind the model reads
(:mod:`avvp.feature_identity`) and ``decision`` the rule validation used. Training state (``last.pt``):
the same plus ``"training"`` (optimizer, scheduler, scaler, RNG, history, best score, diagnostics
accumulators), ``"config"`` (the whole training config) and ``"label_files"`` (``{config key:
"sha256:<hex>"}`` of each label file read, checked on ``--resume`` with the feature identities). Official HAN checkpoints are the
``state_dict`` that ``main_avvp.py`` of YapengTian/AVVP-ECCV20 saves for ``MMIL_Net``; their keys are
mapped onto the HAN configuration of :class:`~avvp.models.parser.Parser`, and the unused encoders they
carry are ignored and listed. Official JoMoLD checkpoints (``main.py`` of MCG-NJU/JoMoLD) are a dict
whose ``model`` is the state dict of its ``MMIL_Net`` (the same keys, mapped the same way, onto HAN with
dropout 0.5 on the visual segments) beside optimizer, scheduler and RNG states, a NumPy RNG state among
them: they are read allowing exactly that. Official VALOR checkpoints (``main_avvp.py`` of
Franklin905/VALOR: VALOR, VALOR+ and VALOR++ alike) are the plain state dict of its ``MMIL_Net``: the same
key names with ``hat_encoder.layers.<i>`` for each of its stacked layers and its final norms; their width,
depth, feed-forward width and input kinds are read from the tensors (:func:`valor_sizes`), the rest is
:data:`VALOR_SETTINGS`. Native checkpoints of the first format (``avvp-parser/1``, HAN
only, written before the parser was composable) are read too: their config and keys are renamed on
loading.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import ValidationError
from torch import nn

from avvp.data.features import FEATURE_SHAPES
from avvp.decision_rules import DECISION_RULES, FUSED_RULE, MODALITY_RULE, PUBLISHED_THRESHOLD
from avvp.errors import InputError, first_items
from avvp.feature_identity import identity_differences
from avvp.io import atomic_path
from avvp.models import ModelConfig, build_model
from avvp.models.blocks.han import HANBlock
from avvp.torch_files import NUMPY_RNG_TYPES, RefusedContentError, load_dict
from avvp.training.losses import LabelSmoothing
from avvp.training.noise_ratios import MODALITIES

log = logging.getLogger(__name__)
NATIVE_FORMAT = "avvp-parser/2"
ENCODER_FORMAT = "avvp-avg-encoder/1"
"""Format of the AVG encoder checkpoint ``avvp pretrain`` writes (``encoder.pt``)."""
LEGACY_HAN_FORMAT = "avvp-parser/1"
LEGACY_HAN_PREFIXES = {
    "audio_projection.": "projections.audio.",
    "frame_projection.": "projections.frames.",
    "motion_projection.": "projections.motion.",
    "visual_fusion.": "projections.visual_fusion.",
    "han_layer.": "block.layer.",
}
"""Key prefix in an ``avvp-parser/1`` checkpoint -> prefix in the parser (other keys are unchanged)."""
CHECKPOINT_FORMATS = ("native", "official-han", "official-jomold", "official-valor")
CheckpointFormat = Literal["native", "official-han", "official-jomold", "official-valor"]
VALOR_SETTINGS = {"num_heads": 8, "stream_order": "sequential", "norm": "post"}
"""VALOR's network beyond the sizes its tensors hold: 8 heads and post-norm (``--nhead 8 --norm_where
post_norm`` in all its scripts), the visual update attending over the updated audio (its ``Encoder``)."""
OFFICIAL_NETWORKS = {
    "official-han": ("official HAN (MMIL_Net)", {}),
    "official-jomold": ("official JoMoLD (MMIL_Net)", {"segment_dropout": {"visual": 0.5}}),
    "official-valor": ("official VALOR (MMIL_Net)", VALOR_SETTINGS),
}
"""Official format -> (its name in messages, the parser config its network is: HAN plus these settings;
VALOR's sizes and input kinds come from its tensors, :func:`valor_sizes`)."""
FORMAT_RULES = {
    "native": FUSED_RULE,
    "official-han": FUSED_RULE,
    "official-jomold": MODALITY_RULE,
    "official-valor": FUSED_RULE,
}
"""The decision rule of a checkpoint that records none: fused (HAN; VALOR's ``eval`` too: segment
probability >= 0.5 times the fused video-level prediction >= 0.5), modality for official JoMoLD files."""

OFFICIAL_PREFIXES = {
    "fc_a.": "projections.audio.",
    "fc_v.": "projections.frames.",
    "fc_st.": "projections.motion.",
    "fc_fusion.": "projections.visual_fusion.",
    "fc_prob.": "pooling.classifier.",
    "fc_frame_att.": "pooling.temporal_attention.",
    "fc_av_att.": "pooling.modality_attention.",
}
"""Key prefix in an official ``MMIL_Net`` state dict (HAN, JoMoLD, VALOR) -> prefix in the parser, outside
the encoder layers."""
OFFICIAL_LAYER_PARTS = {
    "self_attn.": "self_attention.",
    "cm_attn.": "cross_attention.",
    "linear1.": "feedforward_in.",
    "linear2.": "feedforward_out.",
    "norm1.": "attention_norm.",
    "norm2.": "feedforward_norm.",
}
"""Part of official encoder layer ``hat_encoder.layers.<i>.`` -> part of the han block's layer ``i``."""
OFFICIAL_LAYER = re.compile(r"hat_encoder\.layers\.(\d+)\.")
VALOR_FINAL_NORMS = {
    "hat_encoder.final_norm_a.": "block.audio_norm.",
    "hat_encoder.final_norm_v.": "block.visual_norm.",
}
"""VALOR's final per-stream norms -> the pre-norm han block's (unused by VALOR's post-norm network)."""

HAN_UNUSED = (
    "audio_encoder.",
    "visual_encoder.",
    "cmt_encoder.",
    "hat_encoder.norm1.",
    "hat_encoder.norm2.",
)
"""Modules HAN's (and JoMoLD's) ``MMIL_Net`` builds but never uses in its forward pass (weights ignored)."""
OFFICIAL_UNUSED = {"official-han": HAN_UNUSED, "official-jomold": HAN_UNUSED, "official-valor": ()}
"""Unused modules of each official network (VALOR's final norms: when its network is post-norm)."""
VALOR_AUDIO_KINDS = {FEATURE_SHAPES["vggish"][1]: "vggish", FEATURE_SHAPES["clap"][1]: "clap"}
VALOR_VISUAL_KINDS = {FEATURE_SHAPES["resnet152"][1]: "resnet152", FEATURE_SHAPES["clip"][1]: "clip"}
"""Input width of VALOR's ``fc_a`` / ``fc_v`` -> the feature kind it reads (VGGish or CLAP feature maps;
ResNet152 or CLIP ViT-L/14)."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` ``payload`` to ``path`` atomically.

    The file is serialised in memory and written by Python, so a failed write (full disk) is an ``OSError``
    naming ``path`` (torch's own file writer reports it as an unrelated ``RuntimeError``).
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def previous_run(
    last: Path,
    config: dict[str, Any],
    resume: bool,
    overwrite: bool,
    free_keys: tuple[str, ...],
    command: str,
) -> dict[str, Any] | None:
    """The training state in ``last`` to resume from, or None to start afresh.

    ``config`` is the run's config as JSON-like data; with ``resume`` the saved config must equal it except
    for ``free_keys``. Without ``resume`` an existing ``last`` is an :class:`InputError` unless ``overwrite``.
    ``command`` names the writer in messages (e.g. ``avvp train``).
    """
    if not last.exists():
        if resume:
            log.info("%s: no checkpoint to resume from; starting a new run", last)
        return None
    if not resume:
        if overwrite:
            return None
        raise InputError(f"{last}: a run already exists here; pass --resume to continue it or --overwrite")
    state = load_dict(last)
    if "training" not in state or "config" not in state:
        raise InputError(f"{last}: not a training checkpoint written by '{command}'")
    saved = {k: v for k, v in state["config"].items() if k not in free_keys}
    current = {k: v for k, v in config.items() if k not in free_keys}
    differing = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
    if differing:
        raise InputError(f"{last}: cannot resume: the config differs from the saved run in {differing}")
    return state


def file_digest(path: Path) -> str:
    """``"sha256:<hex>"`` of the bytes of ``path`` (a label file: what a split holds)."""
    return f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def check_same_inputs(
    last: Path,
    state: Mapping[str, Any],
    features: Mapping[str, Mapping[str, Any]],
    label_files: Mapping[str, str],
    where: Mapping[str, str],
) -> None:
    """Refuse to resume the run saved in ``last`` (its loaded ``state``) on other data than it trained on.

    ``features`` is the identity of each kind about to be read (:mod:`avvp.feature_identity`),
    ``label_files`` the :func:`file_digest` of each label file by config key (``splits.<name>``,
    ``pseudo_labels``, ...: :meth:`~avvp.training.config.TrainConfig.label_files`), ``where`` the file each
    feature kind (``features.<kind>``) or config key comes from, for messages. A difference is an
    :class:`InputError` naming the config key and the file. A checkpoint that recorded only its splits'
    digests (``"splits"``) is checked for those; one that recorded none, for its features only.
    """
    problems = []
    recorded_features = state.get("features") or {}
    for kind in sorted(recorded_features.keys() | features.keys()):
        source = where.get(f"features.{kind}", "the features")
        if kind not in features or kind not in recorded_features:
            problems.append(f"features.{kind}: read by only one of the runs")
            continue
        differences = identity_differences(recorded_features[kind], features[kind], source)
        if differences:
            problems.append(f"features.{kind} ({source}): {'; '.join(differences)}")
    recorded = recorded_label_files(last, state, label_files)
    for key in sorted(recorded.keys() | label_files.keys()):
        before, now = recorded.get(key), label_files.get(key)
        if before == now:
            continue
        if before is None or now is None:
            problem = "read by only one of the runs"
        else:
            problem = f"the file's content differs from the one the run trained on ({before} in the checkpoint vs {now} now)"
        problems.append(f"{key} ({where.get(key, 'its file')}): {problem}")
    if problems:
        raise InputError(
            f"{last}: cannot resume on other data than the run trained on: {' | '.join(problems)} "
            "(train into a new --output-dir, or pass --overwrite to start this run afresh)"
        )


def recorded_label_files(last: Path, state: Mapping[str, Any], now: Mapping[str, str]) -> dict[str, str]:
    """The label-file digests ``state`` recorded, by config key; for a checkpoint older than that record,
    the keys it cannot speak for are taken as unchanged (with a warning naming them)."""
    if "label_files" in state:
        return dict(state["label_files"])
    recorded = {f"splits.{name}": digest for name, digest in (state.get("splits") or {}).items()}
    unchecked = sorted(now.keys() - recorded.keys())
    if unchecked:
        log.warning(
            "%s: records no digests of %s; resuming without checking them", last, ", ".join(unchecked)
        )
    return {**{key: now[key] for key in unchecked}, **recorded}


def cpu_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s weights, detached and on the CPU (what a checkpoint file holds)."""
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def native_payload(
    model: nn.Module,
    epoch: int,
    metrics: dict[str, Any],
    features: dict[str, dict[str, Any]],
    decision: dict[str, Any],
) -> dict[str, Any]:
    """The native checkpoint dict of ``model``: its config, the identity of the ``features`` it was trained
    on (per kind) and the ``decision`` rule of its validation travel with the weights."""
    return {
        "format": NATIVE_FORMAT,
        "model": model.config.model_dump(mode="json"),
        "state_dict": cpu_state_dict(model),
        "epoch": epoch,
        "metrics": metrics,
        "features": features,
        "decision": decision,
    }


def _native_entry(checkpoint: str | Path | dict[str, Any], key: str) -> Any:
    payload = checkpoint if isinstance(checkpoint, dict) else load_dict(checkpoint)
    return payload.get(key) if payload.get("format") == NATIVE_FORMAT else None


def checkpoint_features(checkpoint: str | Path | dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Per feature kind, the identity of the features a native checkpoint (path or loaded dict) was trained
    on; None when it records none (older native files, official HAN state dicts)."""
    return _native_entry(checkpoint, "features")


def checkpoint_decision(checkpoint: str | Path | dict[str, Any]) -> dict[str, Any] | None:
    """The decision rule a native checkpoint (path or loaded dict) was validated with (``rule``, its
    thresholds); None when it records none."""
    return _native_entry(checkpoint, "decision")


def default_decision(
    path: Path, payload: dict[str, Any], checkpoint_format: CheckpointFormat
) -> dict[str, Any]:
    """The decision rule and thresholds to predict with unless options say otherwise (``rule``,
    ``segment``, ``video``): what a native checkpoint records, else the format's rule
    (:data:`FORMAT_RULES`) at thresholds 0.5."""
    recorded = checkpoint_decision(payload) if checkpoint_format == "native" else None
    decision = {
        "rule": FORMAT_RULES[checkpoint_format],
        "segment": PUBLISHED_THRESHOLD,
        "video": PUBLISHED_THRESHOLD,
    }
    decision.update(recorded or {})
    if decision["rule"] not in DECISION_RULES:
        raise InputError(
            f"{path}: unknown decision rule {decision['rule']!r} recorded; known: {DECISION_RULES}"
        )
    return decision


def checkpoint_label_smoothing(payload: dict[str, Any]) -> dict[str, float] | None:
    """The label smoothing ``delta`` per modality (``audio``, ``visual``) of the training config a native
    checkpoint carries (``best.pt`` and ``last.pt`` do; older files do not): None when it carries none."""
    config = _native_entry(payload, "config")
    settings = (config or {}).get("loss", {}).get("label_smoothing")
    if settings is None:
        return None
    smoothing = LabelSmoothing.model_validate(settings)
    return {modality: smoothing.amount(modality) for modality in MODALITIES}


def load_weights(path: Path, model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load ``state_dict`` into ``model`` strictly; a mismatch is an :class:`InputError` listing what differs."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = [
        f"{label}: {first_items(items, 4)}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
        if items
    ]
    if problems:
        raise InputError(f"{path}: checkpoint does not fit the model architecture ({'; '.join(problems)})")
    broken = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise InputError(f"{path}: the checkpoint holds NaN or infinite weights in {first_items(broken, 4)}")
    model.load_state_dict(state_dict)


def _rename_prefixes(
    state_dict: dict[str, torch.Tensor], prefixes: dict[str, str]
) -> dict[str, torch.Tensor]:
    """``state_dict`` with each key's first matching prefix of ``prefixes`` replaced (others unchanged)."""
    renamed = {}
    for key, value in state_dict.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        renamed[prefixes[prefix] + key[len(prefix) :] if prefix else key] = value
    return renamed


def model_from_native(path: Path, payload: dict[str, Any]) -> nn.Module:
    """Build the model a native checkpoint describes and load its weights."""
    if payload.get("format") not in (NATIVE_FORMAT, LEGACY_HAN_FORMAT):
        hint = (
            " (it looks like a raw state dict: try --checkpoint-format official-han or official-valor)"
            if "fc_prob.weight" in payload
            else ""
        )
        raise InputError(f"{path}: not a native avvp checkpoint{hint}")
    model_config, state_dict = dict(payload["model"]), payload["state_dict"]
    if payload["format"] == LEGACY_HAN_FORMAT:
        model_config.pop("name", None)
        state_dict = _rename_prefixes(state_dict, LEGACY_HAN_PREFIXES)
    try:
        config = ModelConfig.model_validate(model_config)
    except ValidationError as err:
        raise InputError(
            f"{path}: invalid model config in checkpoint ({err.error_count()} problem(s): {err})"
        ) from None
    model = build_model(config)
    load_weights(path, model, state_dict)
    return model


def _other_format_hint(keys: list[str]) -> str:
    """A hint naming the official format whose network has ``keys`` (empty when none does)."""
    if any(key.startswith(HAN_UNUSED) for key in keys):
        return (
            " (its keys are those of the original HAN or JoMoLD code: "
            "try --checkpoint-format official-han or official-jomold)"
        )
    if any(key.startswith(tuple(VALOR_FINAL_NORMS)) for key in keys):
        return " (its keys are those of the original VALOR code: try --checkpoint-format official-valor)"
    if any(OFFICIAL_LAYER.match(key) for key in keys):
        return " (it holds more encoder layers than this network: try --checkpoint-format official-valor)"
    return ""


def map_official(
    path: Path, state_dict: dict[str, torch.Tensor], checkpoint_format: CheckpointFormat, config: ModelConfig
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an official ``MMIL_Net`` state dict of ``checkpoint_format`` (HAN's, JoMoLD's or VALOR's) to
    the keys of the parser ``config`` describes; returns ``(mapped, ignored keys)``.

    A ``module.`` prefix (from ``DataParallel``) is stripped. Encoder layer ``i`` maps to the han block's
    layer ``i``; VALOR's final norms to the block's own when ``config`` is pre-norm, else they are unused.
    Keys neither mapped nor known to be unused are an :class:`InputError` naming the file (the file is some
    other architecture; when its keys are another official network's, the message says which).
    """
    unused = OFFICIAL_UNUSED[checkpoint_format]
    if checkpoint_format == "official-valor" and config.norm == "post":
        unused = (*unused, *VALOR_FINAL_NORMS)
    mapped: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    foreign: list[str] = []
    for key, value in state_dict.items():
        bare = key.removeprefix("module.")
        target = _official_target(bare, checkpoint_format, config)
        if target is not None:
            mapped[target] = value
        elif bare.startswith(unused):
            ignored.append(key)
        else:
            foreign.append(bare)
    if foreign:
        network = OFFICIAL_NETWORKS[checkpoint_format][0]
        shown = first_items(foreign, 4)
        raise InputError(
            f"{path}: not an {network} state dict; unexpected keys: {shown}{_other_format_hint(foreign)}"
        )
    return mapped, ignored


def _official_target(bare: str, checkpoint_format: CheckpointFormat, config: ModelConfig) -> str | None:
    """The parser key of official key ``bare`` (None when the parser has no such weight)."""
    prefix = next((p for p in OFFICIAL_PREFIXES if bare.startswith(p)), None)
    if prefix is not None:
        return OFFICIAL_PREFIXES[prefix] + bare[len(prefix) :]
    layer = OFFICIAL_LAYER.match(bare)
    if layer is not None and int(layer[1]) < config.num_layers:
        rest = bare[layer.end() :]
        part = next((p for p in OFFICIAL_LAYER_PARTS if rest.startswith(p)), None)
        if part is not None:
            name = HANBlock.layer_name(config, int(layer[1]))
            return f"block.{name}.{OFFICIAL_LAYER_PARTS[part]}{rest[len(part) :]}"
    final = next((p for p in VALOR_FINAL_NORMS if bare.startswith(p)), None)
    if checkpoint_format == "official-valor" and config.norm == "pre" and final is not None:
        return VALOR_FINAL_NORMS[final] + bare[len(final) :]
    return None


def valor_sizes(path: Path, state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The sizes and input kinds of VALOR's ``MMIL_Net`` its state dict holds (parser config entries):
    ``d_model`` and the input kinds from ``fc_a`` and ``fc_v``, ``num_layers`` from the encoder layers,
    ``feedforward`` from their ``linear1``. A missing tensor or an unknown input width is an
    :class:`InputError` naming the file."""
    bare = {key.removeprefix("module."): value for key, value in state_dict.items()}
    needed = ("fc_a.weight", "fc_v.weight", "hat_encoder.layers.0.linear1.weight")
    absent = [key for key in needed if not isinstance(bare.get(key), torch.Tensor) or bare[key].dim() != 2]
    if absent:
        raise InputError(
            f"{path}: not an {OFFICIAL_NETWORKS['official-valor'][0]} state dict: no 2-d tensor "
            f"{first_items(absent, 3)}{_other_format_hint(list(bare))}"
        )
    audio_width, visual_width = bare["fc_a.weight"].shape[1], bare["fc_v.weight"].shape[1]
    for role, width, kinds in (
        ("fc_a", audio_width, VALOR_AUDIO_KINDS),
        ("fc_v", visual_width, VALOR_VISUAL_KINDS),
    ):
        if width not in kinds:
            known = ", ".join(f"{w} ({k})" for w, k in kinds.items())
            raise InputError(f"{path}: {role} reads features of width {width}; VALOR's are {known}")
    layers = {int(match[1]) for key in bare if (match := OFFICIAL_LAYER.match(key))}
    return {
        "d_model": bare["fc_a.weight"].shape[0],
        "num_layers": max(layers) + 1,
        "feedforward": bare["hat_encoder.layers.0.linear1.weight"].shape[0],
        "inputs": {"audio": VALOR_AUDIO_KINDS[audio_width], "visual": VALOR_VISUAL_KINDS[visual_width]},
    }


def official_weights(
    path: Path, payload: dict[str, Any], checkpoint_format: CheckpointFormat
) -> dict[str, torch.Tensor]:
    """The ``MMIL_Net`` state dict in an official checkpoint: the file itself (HAN, VALOR; or its
    ``state_dict``) or its ``model`` entry (JoMoLD, whose optimizer, scheduler and RNG entries are not used)."""
    if payload.get("format") == NATIVE_FORMAT:
        raise InputError(f"{path}: this is a native avvp checkpoint; use --checkpoint-format native")
    if checkpoint_format != "official-jomold":
        if isinstance(payload.get("model"), dict) and "fc_prob.weight" not in payload:
            raise InputError(
                f"{path}: a dict with a 'model' entry, as the original JoMoLD code saves: "
                "try --checkpoint-format official-jomold"
            )
        return payload.get("state_dict", payload)
    state_dict = payload.get("model")
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        hint = (
            " (a bare state dict: try --checkpoint-format official-han)"
            if "fc_prob.weight" in payload
            else ""
        )
        raise InputError(f"{path}: not a checkpoint of the original JoMoLD code: no 'model' state dict{hint}")
    others = sorted(set(payload) - {"model"})
    log.info(
        "%s: official JoMoLD checkpoint (epochs: %s); not used: %s",
        path,
        payload.get("epochs", "not recorded"),
        ", ".join(others) or "nothing",
    )
    return state_dict


def encoder_payload(encoder: nn.Module, epoch: int, variant: str) -> dict[str, Any]:
    """The checkpoint dict of a pretrained AVG ``encoder`` (its config travels with the weights)."""
    return {
        "format": ENCODER_FORMAT,
        "encoder": encoder.config.model_dump(mode="json"),
        "state_dict": cpu_state_dict(encoder),
        "epoch": epoch,
        "variant": variant,
    }


def load_pretrained_encoder(path: str | Path, encoder: nn.Module) -> None:
    """Load the weights of an ``avvp pretrain`` encoder checkpoint into a parser's ``encoder``.

    Raises :class:`InputError` when the file is not such a checkpoint or its sizes differ from the
    parser's ``model.input_encoder`` (the message lists the differing sizes).
    """
    path = Path(path)
    payload = load_dict(path)
    if payload.get("format") != ENCODER_FORMAT:
        raise InputError(f"{path}: not an AVG encoder checkpoint written by 'avvp pretrain' (encoder.pt)")
    saved = payload["encoder"]
    wanted = encoder.config.model_dump(mode="json")
    differing = [
        f"{k} {saved.get(k)} vs {wanted[k]}" for k in saved.keys() & wanted.keys() if saved[k] != wanted[k]
    ]
    if differing:
        raise InputError(
            f"{path}: the pretrained encoder's sizes differ from model.input_encoder ({', '.join(sorted(differing))})"
        )
    load_weights(path, encoder, payload["state_dict"])


def model_from_payload(
    path: Path, payload: dict[str, Any], checkpoint_format: CheckpointFormat = "native"
) -> nn.Module:
    """The model of checkpoint ``payload``, loaded from ``path`` (CPU, eval mode); see :func:`load_model`."""
    if checkpoint_format == "native":
        return model_from_native(path, payload).eval()
    network, settings = OFFICIAL_NETWORKS[checkpoint_format]
    state_dict = official_weights(path, payload, checkpoint_format)
    if checkpoint_format == "official-valor":
        settings = {**settings, **valor_sizes(path, state_dict)}
    try:
        config = ModelConfig.model_validate(settings)
    except ValidationError as err:
        problems = "; ".join(error["msg"] for error in err.errors())
        raise InputError(f"{path}: its tensors describe no valid {network}: {problems}") from None
    mapped, ignored = map_official(path, state_dict, checkpoint_format, config)
    model = build_model(config)
    load_weights(path, model, mapped)
    if ignored:
        log.info("%s: ignored %d unused %s weight(s): %s", path, len(ignored), network, ", ".join(ignored))
    return model.eval()


def load_checkpoint(path: str | Path, checkpoint_format: CheckpointFormat = "native") -> dict[str, Any]:
    """The dict in checkpoint file ``path``, read without running code from it: tensors and plain values,
    plus the NumPy RNG state an official JoMoLD file holds (only for ``official-jomold``)."""
    if checkpoint_format == "official-jomold":
        return load_dict(path, NUMPY_RNG_TYPES)
    try:
        return load_dict(path)
    except RefusedContentError as err:
        if not err.name.startswith("numpy"):
            raise
        raise InputError(
            f"{err}; files of the original JoMoLD code hold a NumPy RNG state: try --checkpoint-format official-jomold"
        ) from None


def load_model(path: str | Path, checkpoint_format: CheckpointFormat = "native") -> nn.Module:
    """Load a model for prediction from a native checkpoint or an official HAN, JoMoLD or VALOR file (CPU,
    eval mode)."""
    return model_from_payload(Path(path), load_checkpoint(path, checkpoint_format), checkpoint_format)
