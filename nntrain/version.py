"""The installed version, read from the package metadata: pyproject.toml is the one place it is
written. importlib.metadata costs about 10 ms to import, so it is read only when asked for
(``nntrain --version``, a run's summary.json)."""

from functools import cache


@cache
def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("nntrain")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
