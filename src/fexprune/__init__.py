"""fexprune: facial expression CNNs on SFEW and hidden-unit pruning.

The Python API (`fexprune.train`, `open_run`, `prune`, `prune_curve`, `compare`, `run`) lives in `fexprune.api` and
is loaded on first use, so `import fexprune` (and the command line's --help) does not load torch.
"""

__version__ = "0.1.0"

_API = ("Run", "open_run", "train", "prune", "prune_curve", "compare", "run")


def __getattr__(name: str):
    if name in _API:
        from fexprune import api

        return getattr(api, name)
    raise AttributeError(f"module 'fexprune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
