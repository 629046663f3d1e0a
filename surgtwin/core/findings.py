"""Findings: warnings and notes with stable codes, attached to series and volumes.

Codes are a contract with users' scripts (``surgtwin info --json``); add new ones,
never rename. See docs/cli.md for the list.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    code: str  # stable, e.g. "gantry_tilt"
    message: str  # one sentence a radiologist understands
    path: str | None = None  # the file concerned, when there is one
    severity: str = "warning"  # "info" | "warning" | "error"

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        return cls(
            code=str(data["code"]),
            message=str(data["message"]),
            path=data.get("path"),
            severity=str(data.get("severity", "warning")),
        )
