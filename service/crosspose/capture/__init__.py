"""Capture: one grabber process per camera and one module per source kind (opencv, file, synthetic)."""

from crosspose.capture.frames import decode_frame, encode_frame
from crosspose.capture.grabber import Grabber, GrabberStats, run_grabber
from crosspose.capture.source import Source, SourceEnded, SourceError
from crosspose.capture.sources import open_source, source_kind

__all__ = [
    "Grabber",
    "GrabberStats",
    "Source",
    "SourceEnded",
    "SourceError",
    "decode_frame",
    "encode_frame",
    "open_source",
    "run_grabber",
    "source_kind",
]
