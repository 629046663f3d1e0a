"""Small pieces every command shares: exit codes, JSON printing, input checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from surgtwin.core.errors import SurgTwinError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def require_existing(paths: list[str]) -> None:
    for path in paths:
        if not Path(path).exists():
            raise SurgTwinError(f"{path}: no such file or folder", code="not_found")
