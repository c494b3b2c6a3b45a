"""One module per calibration file format; each reads bytes into ``ParsedRig`` and writes a rig to bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crosspose.calibration.validation import CameraRecord, Units, ValidationReport


@dataclass
class ParsedRig:
    """What a reader found: cameras in file order, the file's stated units, rig metadata, findings.

    ``units`` is ``None`` when the format leaves units open (the unit rule then decides).
    Translations of a format with stated units are already converted to metres.
    """

    records: list[CameraRecord]
    units: Units | None
    metadata: dict[str, Any] = field(default_factory=dict)
    report: ValidationReport = field(default_factory=ValidationReport)
