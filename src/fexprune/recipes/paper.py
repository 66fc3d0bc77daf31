"""The paper's recipe: its LeNet-like CNN (fexprune.models.cnn) trained with full-batch Adam at a small
rate for 700 epochs; it checkpoints every `checkpoint_every` epochs (its runs last hours at paper settings)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Callable, ClassVar


from fexprune.argtypes import channels_pair, positive_int
from fexprune.errors import InputError
from fexprune.recipes.base import Fitted, Recipe

DEFAULT_LR = 3e-5  # full-batch Adam at this rate gives the paper's slow-then-steep curve over 700 epochs


@dataclass(frozen=True)
class PaperRecipe(Recipe):
    channels: tuple[int, int] = (16, 32)
    kernel_size: int = 5

    name: ClassVar[str] = "paper"
    summary: ClassVar[str] = "the paper's CNN (two conv layers) and full-batch Adam"
    defaults: ClassVar[dict] = {"epochs": 700, "lr": DEFAULT_LR, "batch_size": None, "normalize": "per-image", "eye_align": True}
    options: ClassVar[tuple[str, ...]] = ("channels", "kernel_size", "checkpoint_every")
    checkpoints: ClassVar[bool] = True
    paper_network: ClassVar[bool] = True

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--channels", type=channels_pair, default=(16, 32), help="conv1,conv2 channels")
        parser.add_argument("--kernel-size", type=positive_int, default=5, help="kernel side of both conv layers")
        parser.add_argument("--checkpoint-every", type=positive_int, default=50,
                            help="write checkpoint.pt every N epochs, so --resume can continue the run")

    @classmethod
    def from_config(cls, config) -> "PaperRecipe":
        return cls(channels=tuple(config.channels), kernel_size=config.kernel_size)

    def check(self, config) -> None:
        from fexprune.models.cnn import _feature_size

        try:
            _feature_size(cnn_config(config, 2))
        except ValueError:
            width, height = config.image_size
            raise InputError(f"--kernel-size {config.kernel_size} is too large for {width}x{height} images "
                             f"(two convolutions and pools {config.pools[0]},{config.pools[1]} leave no pixel)") from None

    def check_resume(self, config, state: dict, n_classes: int) -> None:
        import torch

        from fexprune.models.cnn import ExpressionCNN
        from fexprune.training.loop import make_optimizer

        missing = [key for key in ("epochs_done", "model", "optimizer", "generator", "metrics") if key not in state]
        if missing:
            raise ValueError(f"checkpoint lacks {', '.join(missing)}")
        model = ExpressionCNN(cnn_config(config, n_classes))
        expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
        found = {key: tuple(getattr(value, "shape", ())) for key, value in dict(state["model"]).items()}
        if found != expected:
            key = sorted(key for key in {*expected, *found} if expected.get(key) != found.get(key))[0]
            raise ValueError(f"checkpoint holds another network than the run's spec describes ({key}: "
                             f"{found.get(key, 'missing')} in the checkpoint, {expected.get(key, 'none')} in the run)")
        try:  # the same loads fit does, on a throwaway network: a mismatch is named here, not in a traceback
            model.load_state_dict(state["model"])
            make_optimizer(model, config.lr).load_state_dict(state["optimizer"])
            torch.Generator().set_state(state["generator"])
            int(state["epochs_done"]), list(state["metrics"])
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"checkpoint does not fit this run's network ({first})") from None

    def fit(self, config, data, on_epoch: Callable[[dict], None] | None = None, resume: dict | None = None,
            end_of_epoch: Callable[[int, Callable[[], dict]], None] | None = None) -> Fitted:
        """`resume`: a checkpoint state to continue from; `end_of_epoch(epochs_done, state)` may save `state()`."""
        import torch

        from fexprune.models.cnn import ExpressionCNN
        from fexprune.models.views import predict_logits
        from fexprune.training.loop import fit, make_optimizer

        started = time.perf_counter()
        torch.manual_seed(config.seed)
        model = ExpressionCNN(cnn_config(config, len(data.image_set.classes))).to(data.x_train.device)
        optimizer = make_optimizer(model, config.lr)
        generator = torch.Generator().manual_seed(config.seed)
        rows: list[dict] = []
        start_epoch = 0
        if resume is not None:
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
            generator.set_state(resume["generator"])
            rows = list(resume["metrics"])
            start_epoch = int(resume["epochs_done"])

        def record(row: dict) -> None:
            rows.append(row)
            if on_epoch is not None:
                on_epoch(row)

        def state(epochs_done: int) -> dict:
            return {"epochs_done": epochs_done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(), "metrics": [row for row in rows if row["epoch"] < epochs_done]}

        fit(model, data.x_train, data.y_train, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
            seed=config.seed, optimizer=optimizer, generator=generator, start_epoch=start_epoch,
            x_test=data.x_test, y_test=data.y_test, eval_every=config.eval_every, on_epoch=record,
            end_of_epoch=None if end_of_epoch is None else lambda done: end_of_epoch(done, lambda: state(done)))
        final = {key: rows[-1][key] for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
        predictions = predict_logits(model, data.x_test).argmax(1).cpu().numpy()
        return Fitted(model, rows, final, predictions, {"recipe": "paper"}, time.perf_counter() - started)


def cnn_config(config, n_classes: int) -> CNNConfig:
    """The paper network's shape as a TrainConfig sets it."""
    from fexprune.models.cnn import CNNConfig

    return CNNConfig(channels=tuple(config.channels), kernel_size=config.kernel_size, pools=tuple(config.pools),
                     input_size=tuple(config.image_size), n_classes=n_classes)
