"""nntrain: train small fully connected networks from YAML configs and see how training behaves.

    from nntrain import load_config, train, Network
"""

from .config import load_config
from .model import load_run
from .network import Network
from .registry import ConfigError
from .train import train  # the function shadows the module name, as intended
from .version import version


def __getattr__(name: str):
    """``nntrain.__version__``, read from the package metadata when first asked for."""
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'nntrain' has no attribute {name!r}")


__all__ = ["ConfigError", "Network", "__version__", "load_config", "load_run", "train"]
