"""CLAP (HTS-AT) audio features, as VALOR extracts them (``utils/clap_preprocess.py``, ``clap_utils.py``).

Audio: the clip's 10 s decoded at 48 kHz mono (VALOR: ``librosa.load(sr=48000)``), quantised through int16
(``int16_to_float32(float32_to_int16(x))``, as LAION's CLAP expects); log-mel of LAION's HTS-AT front end:
STFT 1024 (window 1024, periodic Hann, hop 480, centred, reflect padding), power 2, 64 HTK mel bands 50-14000
Hz without normalisation, ``10 log10(max(x, 1e-10))`` -> [1001, 64]; for the fused model the mel is stacked
four times (``mel_fusion`` of a clip not longer than 10 s, ``is_longer`` false, so only the global branch
runs).

Two kinds come from the same model:

- ``clap`` [64, 768]: the HTS-AT feature maps VALOR++ feeds its parser: the final norm's output regrouped by
  frequency bin (HTS-AT's [768, 2, 32] map flattened, 2 x 32 = 64 tokens), the whole 10 s at once;
- ``clap_segments`` [10, 512]: per 1-s segment the L2-normalised CLAP audio embedding that VALOR's audio
  pseudo-labels compare with the prompts: each second alone, repeated to 10 s (``repeatpad``), then as above.

The text side: VALOR's prompts "This is a sound of <class name, lower case>" embedded by the RoBERTa tower
(L2-normalised [25, 512]) and ``exp(logit_scale_a)``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from avvp.data.features import FEATURE_SHAPES, TextEmbeddings
from avvp.errors import InputError
from extractors.hf_models import BYTE_PAD, TINY, LoadedModel, load_model, text_embeddings

DEFAULT_MODEL = "laion/clap-htsat-fused"
SAMPLE_RATE = 48000
CLIP_SAMPLES = 10 * SAMPLE_RATE
SEGMENTS = FEATURE_SHAPES["clap_segments"][0]
FFT, HOP, MEL_BANDS, F_MIN, F_MAX, AMIN = 1024, 480, 64, 50.0, 14000.0, 1e-10
FUSION_COPIES = 4
TEXT_LENGTH = 77
CLASS_NAMES = (
    "Speech",
    "Car",
    "Cheering",
    "Dog",
    "Cat",
    "Frying (food)",
    "Basketball bounce",
    "Fire alarm",
    "Chainsaw",
    "Cello",
    "Banjo",
    "Singing",
    "Chicken, rooster",
    "Violin fiddle",
    "Vacuum cleaner",
    "Baby laughter",
    "Accordion",
    "Lawn mower",
    "Motorcycle",
    "Helicopter",
    "Acoustic guitar",
    "Telephone bell ringing",
    "Baby cry, infant cry",
    "Blender",
    "Clapping",
)
PROMPTS = tuple(f"This is a sound of {name.lower()}" for name in CLASS_NAMES)
"""VALOR's CLAP prompts, one per LLP class in :data:`avvp.data.labels.CLASSES` order."""


def _htsat_fused() -> Any:
    """The configuration of LAION's fused HTS-AT-tiny + RoBERTa-base CLAP (text ids of the byte tokenizer)."""
    from transformers import ClapConfig

    audio = {"enable_fusion": True, "fusion_type": "aff_2d"}
    return ClapConfig(text_config={"pad_token_id": BYTE_PAD}, audio_config=audio)


def _tiny() -> Any:
    """A small fused CLAP of the same classes: HTS-AT's geometry (so 64 x 768 maps) one block per stage."""
    from transformers import ClapConfig

    text = {
        "vocab_size": 384,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 96,
        "pad_token_id": BYTE_PAD,
    }
    audio = {
        "enable_fusion": True,
        "fusion_type": "aff_2d",
        "depths": [1, 1, 1, 1],
        "num_attention_heads": [1, 1, 2, 2],
        "mlp_ratio": 1.0,
    }
    return ClapConfig(text_config=text, audio_config=audio)


ARCHITECTURES = {DEFAULT_MODEL: _htsat_fused, TINY: _tiny}


def _summary(config: Any) -> dict[str, Any]:
    audio = config.audio_config
    return {
        "class": "ClapModel",
        "audio": f"HTS-AT depths {list(audio.depths)}, {audio.patch_embeds_hidden_size}-{audio.hidden_size}",
        "fusion": bool(audio.enable_fusion),
        "text_layers": config.text_config.num_hidden_layers,
        "projection_dim": config.projection_dim,
    }


@functools.cache
def load_clap(name: str, choice: str, seed: int) -> LoadedModel:
    """The CLAP model ``name`` (hub repo[@revision], folder or ``tiny``) with weights ``choice``; built once
    per process for both CLAP kinds. :class:`InputError` when it cannot be had or its sizes do not fit."""
    from transformers import ClapModel

    loaded = load_model("CLAP", ClapModel, name, choice, seed, ARCHITECTURES, _summary)
    config = loaded.model.config
    if config.audio_config.hidden_size != FEATURE_SHAPES["clap"][1] or config.projection_dim != 512:
        raise InputError(
            f"{name}: CLAP audio width {config.audio_config.hidden_size} / projection {config.projection_dim}, "
            "the store needs 768 / 512 (HTS-AT tiny)"
        )
    return loaded


@functools.cache
def _mel_transforms() -> tuple[torch.nn.Module, torch.nn.Module]:
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE,
        n_fft=FFT,
        win_length=FFT,
        hop_length=HOP,
        center=True,
        pad_mode="reflect",
        power=2.0,
        norm=None,
        n_mels=MEL_BANDS,
        f_min=F_MIN,
        f_max=F_MAX,
    )
    return mel, torchaudio.transforms.AmplitudeToDB(top_db=None)


def quantize(waveform: np.ndarray) -> np.ndarray:
    """float audio -> the same through int16: ``int16(clip(x, -1, 1) * 32767) / 32767`` (truncating)."""
    return (np.clip(waveform, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0


def log_mel(waveforms: torch.Tensor) -> torch.Tensor:
    """48 kHz audio float [N, 480000] -> LAION's log-mel float [N, 1001, 64] (time, mel)."""
    mel, to_db = _mel_transforms()
    with torch.inference_mode():
        return to_db(mel(waveforms)).transpose(-1, -2).contiguous()


def map_inputs(waveform: np.ndarray) -> torch.Tensor:
    """A clip's 10 s at 48 kHz float32 [480000] -> its log-mel float [1, 1001, 64] (for ``clap``)."""
    return log_mel(torch.from_numpy(quantize(waveform)).view(1, CLIP_SAMPLES))


def segment_inputs(waveform: np.ndarray) -> torch.Tensor:
    """A clip's 10 s at 48 kHz float32 [480000] -> one log-mel per second, each second repeated to 10 s,
    float [10, 1001, 64] (for ``clap_segments``)."""
    seconds = torch.from_numpy(quantize(waveform)).view(SEGMENTS, -1)
    return log_mel(seconds.repeat(1, CLIP_SAMPLES // seconds.shape[1]))


def _audio_inputs(model: Any, mels: torch.Tensor) -> dict[str, torch.Tensor]:
    copies = FUSION_COPIES if model.config.audio_config.enable_fusion else 1
    return {
        "input_features": mels.unsqueeze(1).expand(-1, copies, -1, -1),
        "is_longer": torch.zeros(len(mels), 1, dtype=torch.bool, device=mels.device),
    }


def map_features(model: Any, mels: torch.Tensor) -> torch.Tensor:
    """Log-mels float [N, 1001, 64] -> HTS-AT feature maps float [N * 64, 768] (64 rows per clip)."""
    maps = model.audio_model(**_audio_inputs(model, mels)).last_hidden_state  # [N, 768, 2, 32]
    return maps.flatten(2).transpose(1, 2).reshape(-1, maps.shape[1])


def segment_features(model: Any, mels: torch.Tensor) -> torch.Tensor:
    """Log-mels float [N, 1001, 64] -> L2-normalised CLAP audio embeddings float [N, 512]."""
    return model.get_audio_features(**_audio_inputs(model, mels)).pooler_output.float()


def prompt_embeddings(loaded: LoadedModel) -> TextEmbeddings:
    """VALOR's 25 prompts embedded by the text tower ([25, 512], L2-normalised) and ``exp(logit_scale_a)``."""
    model = loaded.model
    return text_embeddings(loaded, PROMPTS, model.get_text_features, model.logit_scale_a, TEXT_LENGTH)


def clap_preprocessing(loaded: LoadedModel, kind: str) -> dict[str, Any]:
    """The preprocessing and model description recorded with ``kind`` (``clap`` or ``clap_segments``)."""
    window = "the whole 10 s" if kind == "clap" else "each 1-s segment alone, repeated to 10 s (repeatpad)"
    output = (
        "HTS-AT final-norm feature map [768, 2, 32] flattened to 64 tokens"
        if kind == "clap"
        else "L2-normalised audio projection"
    )
    preprocessing = {
        "sample_rate": SAMPLE_RATE,
        "downmix": "mean of channels ((L+R)/2 for stereo)",
        "short_clip": "silence appended to 10 s",
        "quantize": "int16 round trip",
        "window": window,
        "stft": {"fft": FFT, "window": FFT, "hop": HOP, "window_fn": "periodic hann", "center": "reflect"},
        "mel": {"bands": MEL_BANDS, "low_hz": F_MIN, "high_hz": F_MAX, "scale": "htk", "norm": None},
        "log": "10 log10(max(power, 1e-10))",
        "fusion_input": "mel stacked 4 times, is_longer false (global branch only)",
        "output": output,
        "model": loaded.name,
        "architecture": loaded.architecture,
        "tokenizer": loaded.tokenizer_name,
    }
    if kind == "clap_segments":
        preprocessing["prompts"] = list(PROMPTS)
    return preprocessing
