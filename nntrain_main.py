"""The `nntrain` command's entry point, outside the package so that it runs before the package
is imported: a Ctrl-C or SIGTERM while numpy and nntrain load (the first half second) ends the
command with one line and exit 130 or 143, not a traceback."""

import signal
import sys


def main() -> None:
    def terminated(signum, frame):
        raise SystemExit(143)

    previous = signal.getsignal(signal.SIGTERM)
    try:
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, terminated)
        from nntrain.cli import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit as stop:
        if stop.code == 143:
            print("interrupted", file=sys.stderr)
        raise
    signal.signal(signal.SIGTERM, previous)  # the commands handle it from here on
    run()
