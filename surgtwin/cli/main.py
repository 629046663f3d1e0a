"""``surgtwin`` command line: headless, scriptable, for preparing cases in batch.

Exit status: 0 success, 1 failure (one-line reason on stderr), 2 wrong usage,
130 cancelled with Ctrl-C. ``--json`` output is documented in docs/cli.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import surgtwin
from surgtwin.cli.common import EXIT_CANCELLED, EXIT_FAILURE, EXIT_OK
from surgtwin.cli.common import print_json as _print_json
from surgtwin.cli.common import require_existing as _require_existing
from surgtwin.cli.simulate import register as register_simulate_commands
from surgtwin.cli.terminal import cancellable_progress
from surgtwin.cli.twin import register as register_twin_commands
from surgtwin.core.errors import CancelledError, SurgTwinError


def cmd_info(args: argparse.Namespace) -> int:
    from surgtwin.cli.report import inventory_json, print_inventory
    from surgtwin.core.dicom import scan

    _require_existing(args.paths)
    with cancellable_progress() as progress:
        inventory = scan(args.paths, progress)
    data = inventory_json(inventory, args.paths)
    failure = None
    if not inventory.series:
        failure = f"no DICOM images found ({len(inventory.skipped)} file(s) skipped)"
        data["error"] = {"code": "no_images", "message": failure}
    if args.json:
        _print_json(data)
    else:
        print_inventory(inventory)
    if failure:
        return _fail(failure, "no_images", False, EXIT_FAILURE)
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    from surgtwin.cli.report import print_volume, volume_json
    from surgtwin.core.importer import load_volume
    from surgtwin.core.volume_files import check_output_path, write_volume_file

    _require_existing(args.paths)
    check_output_path(Path(args.output))
    started = time.perf_counter()
    with cancellable_progress() as progress:
        volume, _ = load_volume(
            args.paths, args.series, progress, "refuse" if args.no_resample else "resample"
        )
        progress.check()
        write_volume_file(volume, Path(args.output), before_replace=progress.check)
    data = {
        "output": str(args.output),
        "volume": volume_json(volume),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.json:
        _print_json(data)
    else:
        print_volume(volume)
        print(f"wrote {args.output}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from surgtwin.cli.report import case_json, print_case
    from surgtwin.core.case import load_case, save_case
    from surgtwin.core.commands import AddVolume, History
    from surgtwin.core.importer import load_volume
    from surgtwin.core.scene import Scene

    _require_existing(args.paths)
    output = Path(args.output)
    started = time.perf_counter()
    with cancellable_progress() as progress:
        if args.append and output.exists():
            scene = load_case(output)
        else:
            scene = Scene(title=args.title or "")
        volume, _ = load_volume(
            args.paths, args.series, progress, "refuse" if args.no_resample else "resample"
        )
        progress.check()
        History(scene).execute(AddVolume(volume))
        if not scene.title:
            scene.title = volume.name
        save_case(scene, output, progress=progress)
    data = case_json(scene, output)
    data["seconds"] = round(time.perf_counter() - started, 3)
    if args.json:
        _print_json(data)
    else:
        print_case(scene, output)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from surgtwin.cli.report import case_json, print_case
    from surgtwin.core.case import load_case

    scene = load_case(Path(args.case))
    if args.json:
        _print_json(case_json(scene, Path(args.case)))
    else:
        print_case(scene, Path(args.case))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="surgtwin", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"surgtwin {surgtwin.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="list the series in a folder, zip, DICOMDIR or files")
    info.add_argument("paths", nargs="+", metavar="PATH")
    info.add_argument("--json", action="store_true", help="machine-readable output (docs/cli.md)")
    info.set_defaults(func=cmd_info)

    def add_load_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("paths", nargs="+", metavar="PATH")
        p.add_argument("--series", metavar="UID", help="series to load (default: the largest)")
        p.add_argument(
            "--no-resample",
            action="store_true",
            help="refuse series that need resampling (tilt, variable or missing slices)",
        )
        p.add_argument("--json", action="store_true", help="machine-readable output (docs/cli.md)")

    convert = sub.add_parser("convert", help="write one series as NIfTI, NRRD or MetaImage")
    add_load_options(convert)
    convert.add_argument("-o", "--output", required=True, metavar="OUT.nii.gz|.nrrd|.mha")
    convert.set_defaults(func=cmd_convert)

    imp = sub.add_parser("import", help="import one series into a case file (.stwin)")
    add_load_options(imp)
    imp.add_argument("-o", "--output", required=True, metavar="CASE.stwin")
    imp.add_argument("--title", help="case title (default: the series description)")
    imp.add_argument("--append", action="store_true", help="add to an existing case instead of replacing it")
    imp.set_defaults(func=cmd_import)

    show = sub.add_parser("show", help="summarise a case file")
    show.add_argument("case", metavar="CASE.stwin")
    show.add_argument("--json", action="store_true", help="machine-readable output (docs/cli.md)")
    show.set_defaults(func=cmd_show)
    register_twin_commands(sub)
    register_simulate_commands(sub)
    return parser


def _fail(message: str, code: str, as_json: bool, status: int) -> int:
    one_line = " ".join(message.split())
    try:
        print(f"surgtwin: error: {one_line}", file=sys.stderr)
        if as_json:
            _print_json({"error": {"code": code, "message": one_line}})
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # pydicom's notes on malformed elements are for developers; what matters to the user
        # is reported as findings and skip reasons (or the one-line error).
        # (a handler filter, because pydicom resets its logger's level when imported)
        warnings.filterwarnings("ignore", module=r"pydicom(\..*)?")
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda r: r.name != "pydicom" or r.levelno >= logging.ERROR)
    as_json = bool(getattr(args, "json", False))
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except CancelledError:
        return _fail("cancelled; nothing was written", "cancelled", as_json, EXIT_CANCELLED)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", "cancelled", as_json, EXIT_CANCELLED)
    except SurgTwinError as exc:
        return _fail(str(exc), exc.code, as_json, EXIT_FAILURE)
    except MemoryError:
        return _fail("not enough memory for this volume", "out_of_memory", as_json, EXIT_FAILURE)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", "os_error", as_json, EXIT_FAILURE)
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback reaches a user
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected internal error ({type(exc).__name__}: {exc}); run with -v and report it",
            "internal_error",
            as_json,
            EXIT_FAILURE,
        )


if __name__ == "__main__":
    sys.exit(main())
