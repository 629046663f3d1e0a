"""The ``surgtwin`` entry point: the desktop app, or the command line for subcommands.

``surgtwin`` starts the app; ``surgtwin PATH`` starts it and opens PATH (a DICOM folder, zip
or file, or a .stwin case); app options (``--twin``, ``--screenshot``, ``--quit``) script
it. Anything starting with a CLI subcommand, ``--help``, ``--version`` or ``-v`` goes to
:func:`surgtwin.cli.main.main` unchanged. This module sits outside the layers: it imports
the UI (Qt) only when the app is really started, so CLI runs never load Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

CLI_COMMANDS = frozenset({"info", "convert", "import", "show", "build", "export", "measure", "simulate"})
CLI_OPTIONS = frozenset({"-h", "--help", "--version", "-v", "--verbose"})


def wants_cli(argv: Sequence[str]) -> bool:
    """True when ``argv`` (without the program name) is a command-line invocation."""
    return bool(argv) and (argv[0] in CLI_COMMANDS or argv[0] in CLI_OPTIONS)


def app_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="surgtwin",
        description="Start the desktop app (command-line tools: surgtwin --help).",
        epilog=f"command-line subcommands: {', '.join(sorted(CLI_COMMANDS))}",
    )
    p.add_argument("path", nargs="?", type=Path, help="DICOM folder, zip or file, volume file or .stwin case")
    p.add_argument("--twin", action="store_true", help="build the one-click twin once PATH is open")
    p.add_argument("--screenshot", type=Path, metavar="PNG", help="save a picture of the window when ready")
    p.add_argument("--quit", action="store_true", help="close the app when ready (after --screenshot)")
    return p


def has_display() -> bool:
    """Whether Qt can open a window here (Linux needs an X or Wayland server)."""
    if not sys.platform.startswith("linux"):
        return True
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    return bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or platform.startswith("offscreen")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if wants_cli(args):
        from surgtwin.cli.main import main as cli_main

        return cli_main(args)
    try:
        options = app_parser().parse_args(args)
    except SystemExit as exc:  # argparse has printed the usage error
        return int(exc.code or 0)
    if options.path is not None and not options.path.exists():
        commands = ", ".join(sorted(CLI_COMMANDS))
        print(
            f"surgtwin: {str(options.path)!r} is neither a file or folder to open "
            f"nor a command ({commands}); see surgtwin --help",
            file=sys.stderr,
        )
        return 2
    if not has_display():
        print(
            "surgtwin: no display to show the app on (DISPLAY is not set). Run it on a desktop, "
            "or under a virtual one: xvfb-run -a surgtwin ...; the headless tools are "
            "surgtwin build / export / measure (surgtwin --help).",
            file=sys.stderr,
        )
        return 2
    from surgtwin.ui.application import run_app

    return run_app(
        options.path, twin=options.twin, screenshot=options.screenshot, quit_when_ready=options.quit
    )


if __name__ == "__main__":
    sys.exit(main())
