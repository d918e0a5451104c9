"""nntrain: train small fully connected networks from YAML configs and see how training behaves.

    from nntrain import load_config, train, Network

The names below are imported when first used, so that the command line (which imports
nntrain.cli, and with it this file) starts without loading the whole library.
"""

import importlib
from pathlib import Path

# the Python API: name -> the module that defines it
API = {"load_config": "config", "load_run": "model", "Network": "network",
       "ConfigError": "registry", "train": "loop"}


def __getattr__(name: str):
    if name == "__version__":  # read from the package metadata when first asked for
        return importlib.import_module(".version", __name__).version()
    if name in API:
        value = getattr(importlib.import_module(f".{API[name]}", __name__), name)
        globals()[name] = value
        return value
    if (Path(__file__).parent / f"{name}.py").is_file():  # nntrain.losses, as before
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nntrain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API, "__version__"])


__all__ = ["ConfigError", "Network", "__version__", "load_config", "load_run", "train"]
