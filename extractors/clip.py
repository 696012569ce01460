"""CLIP image embeddings per 1-s segment, as VALOR extracts them (``utils/clip_preprocess.py``).

Per clip: 10 frames, one per second, picked at ``round(linspace(0, 79, 10))`` from the 80 frames LLP's
features see (VALOR picks ``round(linspace(0, N - 1, 10))`` from the N frames of ``ffmpeg -r 8``; the same
frames when N = 80); each converted to floats in [0, 1], resized to exactly ``image_size x image_size``
(bilinear, no antialiasing, aspect not kept, no crop: VALOR's ``ToTensor -> Resize((224, 224))`` on tensors,
not CLIPProcessor's shorter-side resize and centre crop), normalised with CLIP's mean and std; the
L2-normalised output of the visual projection -> ``[10, 768]`` (ViT-L/14).

The text side: VALOR's 25 class prompts ("A photo of ...", in LLP's class order, its wording kept, typos
included), embedded by the text tower and L2-normalised, with ``exp(logit_scale)``; VALOR's visual
pseudo-labels are ``exp(logit_scale) * cos(image, prompt) > threshold``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from avvp.data.features import FEATURE_SHAPES, TextEmbeddings
from avvp.errors import InputError
from extractors.decoding import NUM_FRAMES, frame_sampling
from extractors.hf_models import BYTE_EOS, BYTE_PAD, TINY, LoadedModel, load_model, text_embeddings

DEFAULT_MODEL = "openai/clip-vit-large-patch14"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SEGMENTS, TEXT_LENGTH = FEATURE_SHAPES["clip"][0], 77
FRAME_PICKS = np.round(np.linspace(0, NUM_FRAMES - 1, SEGMENTS)).astype(np.int64)
"""Which of the 80 sampled frames stand for the 10 segments: [0, 9, 18, 26, 35, 44, 53, 61, 70, 79]."""
PROMPTS = (
    "A photo of people talking.",
    "A photo of a car.",
    "A photo of people cheering.",
    "A photo of a dog.",
    "A photo of a cat.",
    "A photo of frying food.",
    "A photo of people playing basketball.",
    "A photo of a fire alarm.",
    "A photo of a chainsaw.",
    "A photo of a cello.",
    "A photo of a banjo.",
    "A photo of people singing.",
    "A photo of a chicken or a rooster.",
    "A photo of a violin.",
    "A photo of a vaccum cleaner.",
    "A photo of a laughing baby.",
    "A photo of an accordion.",
    "A photo of a lawnmower.",
    "A photo of a motorcycle.",
    "A photo of a helicopter.",
    "A photo of a acoustic guiter.",
    "A photo of a ringing telephone.",
    "A photo of a crying baby.",
    "A photo of a blender.",
    "A photo of hands clapping.",
)
"""VALOR's CLIP prompts, one per LLP class in :data:`avvp.data.labels.CLASSES` order, verbatim."""


def _vit_l14() -> Any:
    """The configuration of openai/clip-vit-large-patch14 (text ids of the byte tokenizer)."""
    from transformers import CLIPConfig

    text = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12}
    vision = {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
    }
    text |= {"eos_token_id": BYTE_EOS, "pad_token_id": BYTE_PAD, "bos_token_id": BYTE_EOS}
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=768)


def _tiny() -> Any:
    """A small CLIP of the same classes (768-d projection, so the features keep their shape)."""
    from transformers import CLIPConfig

    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    text = small | {
        "vocab_size": 384,
        "eos_token_id": BYTE_EOS,
        "pad_token_id": BYTE_PAD,
        "bos_token_id": BYTE_EOS,
    }
    vision = small | {"image_size": 32, "patch_size": 8}
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=FEATURE_SHAPES["clip"][1])


ARCHITECTURES = {DEFAULT_MODEL: _vit_l14, TINY: _tiny}


def _summary(config: Any) -> dict[str, Any]:
    vision = config.vision_config
    return {
        "class": "CLIPModel",
        "vision": f"ViT {vision.num_hidden_layers}x{vision.hidden_size}, patch {vision.patch_size}",
        "text_layers": config.text_config.num_hidden_layers,
        "projection_dim": config.projection_dim,
    }


def load_clip(name: str, choice: str, seed: int) -> LoadedModel:
    """The CLIP model ``name`` (hub repo[@revision], folder or ``tiny``) with weights ``choice``
    (``pretrained``, ``random`` or a folder); :class:`InputError` when it cannot be had or its projection
    is not 768-d."""
    from transformers import CLIPModel

    loaded = load_model("CLIP", CLIPModel, name, choice, seed, ARCHITECTURES, _summary)
    if loaded.model.config.projection_dim != FEATURE_SHAPES["clip"][1]:
        raise InputError(
            f"{name}: CLIP projection is {loaded.model.config.projection_dim}-d, the store needs "
            f"{FEATURE_SHAPES['clip'][1]} (ViT-L/14)"
        )
    return loaded


def image_size(loaded: LoadedModel) -> int:
    """The input size of the model's vision tower (224 for ViT-L/14)."""
    return int(loaded.model.config.vision_config.image_size)


def clip_inputs(frames: np.ndarray, size: int) -> torch.Tensor:
    """RGB frames uint8 [80, H, W, 3] -> the 10 segment frames as floats in [0, 1], each resized to exactly
    ``size x size`` (bilinear, no antialiasing) -> float32 [10, 3, size, size]."""
    chosen = torch.from_numpy(np.ascontiguousarray(frames[FRAME_PICKS])).permute(0, 3, 1, 2)
    as_float = chosen.float().div_(255.0)
    return TF.resize(as_float, [size, size], interpolation=TF.InterpolationMode.BILINEAR, antialias=False)


def clip_features(model: Any, images: torch.Tensor) -> torch.Tensor:
    """Frames float [N, 3, S, S] in [0, 1] -> L2-normalised image embeddings float [N, 768]."""
    mean = torch.tensor(CLIP_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, device=images.device).view(3, 1, 1)
    pixels = (images - mean) / std
    embeds = model.get_image_features(pixel_values=pixels).pooler_output
    return torch.nn.functional.normalize(embeds.float(), dim=-1)


def prompt_embeddings(loaded: LoadedModel) -> TextEmbeddings:
    """VALOR's 25 prompts embedded by the text tower (L2-normalised [25, 768]) and ``exp(logit_scale)``."""
    model = loaded.model
    return text_embeddings(loaded, PROMPTS, model.get_text_features, model.logit_scale, TEXT_LENGTH)


def clip_preprocessing(loaded: LoadedModel, size: int) -> dict[str, Any]:
    """The preprocessing and model description recorded with the ``clip`` kind."""
    return frame_sampling() | {
        "segment_frames": f"1 per second: frames round(linspace(0, 79, 10)) = {FRAME_PICKS.tolist()}",
        "image_size": size,
        "resize": "each frame to image_size x image_size on [0, 1] floats, bilinear, no antialias, no crop",
        "mean": CLIP_MEAN,
        "std": CLIP_STD,
        "output": "L2-normalised image embedding (visual projection)",
        "model": loaded.name,
        "architecture": loaded.architecture,
        "tokenizer": loaded.tokenizer_name,
        "prompts": list(PROMPTS),
    }
