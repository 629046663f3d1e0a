"""The ``surgtwin`` entry point: the desktop app, or the command line for subcommands.

``surgtwin`` starts the app; ``surgtwin PATH`` starts it and opens PATH (a DICOM folder, zip
or file, or a .stwin case); anything starting with a CLI subcommand or an option goes to
:func:`surgtwin.cli.main.main` unchanged. This module sits outside the layers: it imports
the UI (Qt) only when the app is really started, so CLI runs never load Qt.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

CLI_COMMANDS = frozenset({"info", "convert", "import", "show", "build", "export", "measure"})


def wants_cli(argv: Sequence[str]) -> bool:
    """True when ``argv`` (without the program name) is a command-line invocation."""
    if not argv:
        return False
    first = argv[0]
    return first in CLI_COMMANDS or first.startswith("-") or len(argv) > 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if wants_cli(args):
        from surgtwin.cli.main import main as cli_main

        return cli_main(args)
    path: Path | None = None
    if args:
        path = Path(args[0])
        if not path.exists():
            commands = ", ".join(sorted(CLI_COMMANDS))
            print(
                f"surgtwin: {args[0]!r} is neither a file or folder to open nor a command ({commands}); "
                "see surgtwin --help",
                file=sys.stderr,
            )
            return 2
    from surgtwin.ui.application import run_app

    return run_app(path)


if __name__ == "__main__":
    sys.exit(main())
