"""nntrain: train small fully connected networks from YAML configs and see how training behaves.

    from nntrain import load_config, train, Network

The names are imported on first use, so ``nntrain --help`` does not pay for NumPy.
"""

__version__ = "0.1.0"
__all__ = ["ConfigError", "Network", "__version__", "load_config", "train"]

_HOMES = {"ConfigError": "registry", "Network": "network", "load_config": "config", "train": "train"}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module 'nntrain' has no attribute {name!r}")
