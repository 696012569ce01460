"""Training configs: the shipped recipes validate, bad keys and types give readable errors, overrides apply."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import SHIPPED_CONFIGS, load_shipped

from avvp.errors import InputError
from avvp.training.config import TrainConfig, load_config, parse_overrides

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_shipped_configs_validate(name: str) -> None:
    assert isinstance(load_shipped(name), TrainConfig)


def test_han_yaml_is_the_published_recipe() -> None:
    config = load_config(CONFIGS / "han.yaml")
    model = config.model
    assert (model.d_model, model.num_heads, model.feedforward, model.dropout) == (512, 1, 512, 0.1)
    assert (model.audio_aggregation, model.visual_aggregation) == ("cross", "cross")
    smoothing = config.loss.label_smoothing
    assert (smoothing.amount("audio"), smoothing.amount("visual")) == (0.0, 0.1)  # y_v = 0.9 y + 0.05
    assert (config.optimizer.lr, config.optimizer.step_size, config.optimizer.gamma) == (3e-4, 10, 0.1)
    assert (config.epochs, config.batch_size) == (40, 16)
    assert (config.thresholds.segment, config.thresholds.video) == (0.5, 0.5)
    assert load_config(CONFIGS / "a_cross_v_self.yaml").model.visual_aggregation == "self"


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: many\nloss:\n  label_smoothing:\n    variant: LS-X\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_config(path)
    message = str(info.value)
    assert "epochs: Input should be a valid integer" in message
    assert "loss.label_smoothing.variant" in message


def test_unknown_loss_term_and_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("loss:\n  terms: {wsl: 1.0, jomold: 1.0}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown loss term\(s\) \['jomold'\]"):
        load_config(path)
    path.write_text("epochs: [1,\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(path)


def test_overrides_are_validated_like_the_file() -> None:
    config = load_config(
        None, parse_overrides(["epochs=3", "model.visual_aggregation=self", "features={vggish: a.h5}"])
    )
    assert config.epochs == 3
    assert config.model.visual_aggregation == "self"
    assert config.features == {"vggish": Path("a.h5")}
    with pytest.raises(InputError, match=r"model\.audio_aggregation"):
        load_config(None, {"model.audio_aggregation": "both"})
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        parse_overrides(["epochs"])


def test_split_files_default_to_llp_names_and_explicit_paths_win() -> None:
    config = load_config(None, {"annotations_dir": "ann", "splits.val": "my_val.csv"})
    assert config.split_file("train") == Path("ann/AVVP_train.csv")
    assert config.split_file("val") == Path("my_val.csv")
    with pytest.raises(InputError, match=r"splits\.train"):
        load_config(None).split_file("train")
