"""The `nntrain` command's entry point, outside the package so that it runs before the package
is imported: a Ctrl-C or SIGTERM while numpy and nntrain load (the first half second) ends the
command with one line and exit 130 or 143, not a traceback."""

import sys


def main() -> None:
    try:
        from nntrain.signals import stop_early_on_signals

        stop_early_on_signals()  # until a run takes them over; a dropped one is raised again
        from nntrain.cli import main as run
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated)
        print("interrupted", file=sys.stderr)
        sys.exit(143 if type(stop).__name__ == "Terminated" else 130)
    run()
