"""Case files (.stwin): saving and loading a whole scene as one file.

See docs/case-files.md for the layout, guarantees and error messages.
"""

from surgtwin.core.case.atomic import remove_stale_temps
from surgtwin.core.case.format import FORMAT_NAME, FORMAT_VERSION, load_case, save_case
from surgtwin.core.case.migrations import MIGRATIONS

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MIGRATIONS", "load_case", "remove_stale_temps", "save_case"]
