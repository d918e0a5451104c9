"""nntrain: train small fully connected networks from YAML configs and see how training behaves."""

from .network import Network
from .registry import ConfigError

__version__ = "0.1.0"
__all__ = ["ConfigError", "Network", "__version__"]
