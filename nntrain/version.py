"""The installed version, read from the package metadata: pyproject.toml is the one place it is
written."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nntrain")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
