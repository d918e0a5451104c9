"""nntrain: train small fully connected networks from YAML configs and see how training behaves.

    from nntrain import load_config, train, Network
"""

__version__ = "0.2.0"

from .config import load_config  # noqa: E402  (the modules below read __version__)
from .model import load_run  # noqa: E402
from .network import Network  # noqa: E402
from .registry import ConfigError  # noqa: E402
from .train import train  # noqa: E402  (the function shadows the module name, as intended)

__all__ = ["ConfigError", "Network", "__version__", "load_config", "load_run", "train"]
