"""VGGish: the log-mel frontend, the PyTorch network, and equivalence with a TF-Hub model after conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from extract_helpers import make_clip

from avvp.errors import InputError
from extractors.decoding import load_audio
from extractors.networks import NetworkOptions, build_networks
from extractors.vggish import (
    VGGish,
    VGGishConfig,
    build_vggish,
    config_from_state_dict,
    log_mel_examples,
    mel_matrix,
)

SMALL = VGGishConfig(channels=(4, 8, 16, 32), hidden=32, embedding=16)


def _no_hub():
    raise AssertionError("the hub is not used for random or file weights")


def test_mel_matrix_shape_and_band_edges():
    weights = mel_matrix().numpy()
    assert weights.shape == (257, 64)
    assert np.all(weights[0] == 0) and np.all(weights >= 0) and weights.max() <= 1.0
    hz = np.linspace(0, 8000, 257)
    used = hz[weights.sum(axis=1) > 0]
    assert used.min() > 125 and used.max() < 7500
    # band centres increase with the band index (the triangles are ordered)
    assert np.all(np.diff(weights.argmax(axis=0)) >= 0)


def test_tone_lands_in_its_mel_band():
    t = np.arange(160000) / 16000
    examples = log_mel_examples(torch.from_numpy((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)))
    assert examples.shape == (10, 96, 64)
    peak_band = int(examples.mean(dim=(0, 1)).argmax())
    tone_bin = round(1000 / (8000 / 256))
    assert mel_matrix()[tone_bin].argmax() == peak_band


def test_each_second_is_one_independent_example():
    waveform = torch.randn(2, 160000)
    changed = waveform.clone()
    changed[1, 3 * 16000 : 4 * 16000] = 0.0
    before, after = log_mel_examples(waveform), log_mel_examples(changed)
    assert before.shape == (2, 10, 96, 64)
    differs = (before != after).flatten(2).any(dim=2)
    assert differs.tolist() == [[False] * 10, [i == 3 for i in range(10)]]


def test_network_outputs_relu_embeddings_and_configs_round_trip(tmp_path):
    torch.manual_seed(0)
    model = VGGish(SMALL).eval()
    with torch.inference_mode():
        out = model(torch.randn(5, 96, 64))
    assert out.shape == (5, 16) and bool((out >= 0).all())
    assert config_from_state_dict(model.state_dict()) == SMALL
    assert config_from_state_dict(VGGish().state_dict()) == VGGishConfig()
    path = tmp_path / "small.pt"
    torch.save(model.state_dict(), path)
    loaded, record = build_vggish(str(path), seed=0, pretrained=_no_hub)
    assert record.weights.source == "sha256" and len(str(record.weights)) == len("sha256:") + 64
    assert torch.equal(loaded.state_dict()["embeddings.4.weight"], model.state_dict()["embeddings.4.weight"])
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"broken\.pt"):
        build_vggish(str(broken), seed=0, pretrained=_no_hub)


def test_random_weights_are_seeded():
    first, record = build_vggish("random", seed=3, pretrained=_no_hub)
    second, _ = build_vggish("random", seed=3, pretrained=_no_hub)
    other, _ = build_vggish("random", seed=4, pretrained=_no_hub)
    assert str(record.weights) == "random-init(seed=3)" and record.identity()["backend"] == "torch"
    weight = "features.0.weight"
    assert torch.equal(first.state_dict()[weight], second.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])


def _save_small_tf_vggish(directory, config: VGGishConfig, seed: int) -> None:
    """A TF SavedModel with VGGish's structure, variable names and frontend (tf.signal ops), random weights.

    Like google/vggish/1 it maps a 16 kHz waveform to pre-activation embeddings, one per 0.96 s.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    c1, c2, c3, c4 = config.channels
    shapes = {
        "conv1": [3, 3, 1, c1],
        "conv2": [3, 3, c1, c2],
        "conv3/conv3_1": [3, 3, c2, c3],
        "conv3/conv3_2": [3, 3, c3, c3],
        "conv4/conv4_1": [3, 3, c3, c4],
        "conv4/conv4_2": [3, 3, c4, c4],
        "fc1/fc1_1": [6 * 4 * c4, config.hidden],
        "fc1/fc1_2": [config.hidden, config.hidden],
        "fc2": [config.hidden, config.embedding],
    }

    class SmallVGGish(tf.Module):
        def __init__(self):
            super().__init__()
            self.layers = []
            for scope, shape in shapes.items():
                fan_in = int(np.prod(shape[:-1]))
                kernel = rng.normal(0, np.sqrt(2 / fan_in), shape).astype(np.float32)
                bias = rng.normal(0, 0.1, shape[-1]).astype(np.float32)
                with tf.name_scope(f"vggish/{scope}"):
                    self.layers.append(
                        (tf.Variable(kernel, name="weights"), tf.Variable(bias, name="biases"))
                    )
            self.mel = tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125.0, 7500.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, waveform):
            spectrogram = tf.abs(
                tf.signal.stft(waveform, 400, 160, fft_length=512, window_fn=tf.signal.hann_window)
            )
            log_mel = tf.math.log(tf.matmul(spectrogram, self.mel) + 0.01)
            net = tf.signal.frame(log_mel, 96, 96, axis=0)[..., tf.newaxis]
            for index, (kernel, bias) in enumerate(self.layers[:6]):
                net = tf.nn.relu(tf.nn.conv2d(net, kernel, 1, "SAME") + bias)
                if index in (0, 1, 3, 5):
                    net = tf.nn.max_pool2d(net, 2, 2, "SAME")
            net = tf.reshape(net, [tf.shape(net)[0], -1])
            for kernel, bias in self.layers[6:8]:
                net = tf.nn.relu(tf.matmul(net, kernel) + bias)
            kernel, bias = self.layers[8]
            return tf.matmul(net, kernel) + bias

    tf.saved_model.save(SmallVGGish(), str(directory))


def test_tfhub_model_and_converted_pytorch_model_agree(tmp_path):
    pytest.importorskip(
        "tensorflow_hub", reason="the tfhub extra (tensorflow, tensorflow-hub) is not installed"
    )
    from avvp.cli import main
    from extractors.vggish_tf import hub_embeddings, load_hub_model

    saved = tmp_path / "small_vggish"
    _save_small_tf_vggish(saved, SMALL, seed=0)
    converted = tmp_path / "small_vggish.pt"
    assert main(["convert-vggish", "--handle", str(saved), "--output", str(converted)]) == 0

    waveform = np.random.default_rng(1).uniform(-0.5, 0.5, 160000).astype(np.float32)
    hub_out = hub_embeddings(load_hub_model(str(saved)), waveform.reshape(10, 16000))
    model, record = build_vggish(str(converted), seed=0, pretrained=_no_hub)
    with torch.inference_mode():
        torch_out = model(log_mel_examples(torch.from_numpy(waveform))).numpy()
    assert str(record.weights).startswith("sha256:")
    assert hub_out.shape == torch_out.shape == (10, 16)
    assert (hub_out > 0).mean() > 0.2, "the random model should leave some embeddings positive"
    np.testing.assert_allclose(torch_out, hub_out, rtol=1e-3, atol=1e-3 * np.abs(hub_out).max())

    # the TF-Hub backend as the pipeline wires it (worker-side prepare, then forward) agrees on a clip
    audio = load_audio(make_clip(tmp_path / "clip.mp4", seconds=10.0, video=False, audio_rate=44100)).waveform
    options = NetworkOptions(
        weights={"vggish": "pretrained"}, vggish_backend="tfhub", vggish_handle=str(saved)
    )
    (network,) = build_networks(["vggish"], options, torch.device("cpu"))
    assert network.attrs["backend"] == "tfhub" and network.attrs["weights"] == f"tfhub:{saved}"
    with torch.inference_mode():
        pipeline_out = network.forward(network.prepare(audio)).numpy()
        direct_out = model(log_mel_examples(torch.from_numpy(audio))).numpy()
    assert pipeline_out.shape == (10, 16) and np.abs(pipeline_out).max() > 0
    np.testing.assert_allclose(direct_out, pipeline_out, rtol=1e-3, atol=1e-3 * np.abs(pipeline_out).max())
    # the PyTorch backend refuses a checkpoint whose embeddings do not fit the store
    with pytest.raises(InputError, match="embedding size 16"):
        build_networks(["vggish"], NetworkOptions(weights={"vggish": str(converted)}), torch.device("cpu"))
