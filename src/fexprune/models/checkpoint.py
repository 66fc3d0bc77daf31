"""model.pt, the format every run's model is saved in: the network's config, its weights and how its
images were prepared, so predict, export and prune rebuild it without the code that trained it."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from fexprune import runs
from fexprune.errors import InputError
from fexprune.schema import check_model_config
from fexprune.models.best_cnn import BestCNN, BestCNNConfig, BestEnsemble
from fexprune.models.cnn import CNNConfig, ExpressionCNN
from fexprune.models.layer_shapes import KEY as LAYER_SHAPES
from fexprune.models.layer_shapes import resize_layers


def build_model(config: dict) -> nn.Module:
    """A model from the `model_config` a checkpoint stores: the paper's CNN unless it names another; a
    structurally pruned one (its `layer_shapes`, fexprune.models.layer_shapes) with its layers resized."""
    model = _build_unpruned(config)
    return resize_layers(model, config[LAYER_SHAPES]) if config.get(LAYER_SHAPES) else model


def _build_unpruned(config: dict) -> nn.Module:
    architecture = config.get("architecture", "paper")
    if architecture == "best":
        best = BestCNNConfig.from_dict(config)
        return BestEnsemble(best) if best.members > 1 else BestCNN(best)
    if architecture == "fer_transfer":  # the config holds the layer list: no fer or h5py needed
        from fexprune.models.fer_transfer import FERTransfer, FERTransferConfig  # h5py-free, but large: only when asked

        return FERTransfer(FERTransferConfig.from_dict(config))
    if architecture == "fer_probe":  # the frozen FER network's layer list and the linear probe: no fer, h5py or scikit-learn
        from fexprune.models.fer_probe import FERProbe, FERProbeConfig

        return FERProbe(FERProbeConfig.from_dict(config))
    return ExpressionCNN(CNNConfig.from_dict(config))


def save_model(path: Path, model: nn.Module, preprocessing: dict) -> None:
    runs.save_checkpoint(
        path,
        {"model_config": model_config(model), "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
         "preprocessing": preprocessing},
    )


def model_config(model: nn.Module) -> dict:
    """What a checkpoint stores to rebuild `model`: its config, and its layers' shapes if it was pruned."""
    shapes = getattr(model, "layer_shapes", None)
    return {**model.config.to_dict(), LAYER_SHAPES: shapes} if shapes else model.config.to_dict()


def load_model(path: Path) -> tuple[nn.Module, dict]:
    """The model and its preprocessing; a file that is not a fexprune model is refused in one line."""
    state = runs.load_checkpoint(path)
    if not isinstance(state, dict) or not isinstance(state.get("model_config"), dict):
        raise InputError("not a fexprune model checkpoint (no model_config)", path)
    check_model_config(state["model_config"], path)
    try:
        model = build_model(state["model_config"])
        model.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, RuntimeError, AttributeError, ValueError, IndexError, ZeroDivisionError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__  # load_state_dict lists its keys over lines
        raise InputError(f"not a fexprune model checkpoint ({reason[:300]})", path) from None
    model.eval()
    return model, state.get("preprocessing", {})
