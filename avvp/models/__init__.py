"""Parsing models, built from their validated config by name (``model.name`` in a training config).

A new model family adds its config class (a pydantic model with a ``name`` literal) and its module to
:data:`MODELS`; the trainer, losses and predictor only see :class:`~avvp.models.output.ParserOutput`.
"""

from __future__ import annotations

from pydantic import BaseModel
from torch import nn

from avvp.models.han import HANConfig, HybridAttentionParser
from avvp.models.output import ParserOutput

MODELS: dict[str, tuple[type[BaseModel], type[nn.Module]]] = {"han": (HANConfig, HybridAttentionParser)}
"""Model name -> (config class, module class)."""

ModelConfig = HANConfig
"""The union of all model configs (one member today)."""

__all__ = ["MODELS", "ModelConfig", "ParserOutput", "build_model"]


def build_model(config: BaseModel) -> nn.Module:
    """Instantiate the model named by ``config.name`` from its config."""
    return MODELS[config.name][1](config)
