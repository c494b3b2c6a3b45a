"""Whether a shared library loads here, asked of the dynamic loader alone: no ONNX Runtime, torch or
OpenVINO is imported, so the supervisor can tell a host without the NVIDIA driver at no cost."""

from __future__ import annotations

import ctypes
import os

#: The NVIDIA driver's library: without it no GPU provider can start.
NVIDIA_DRIVER = "libcuda.so.1"


def missing_library(library: str) -> str | None:
    """None when the dynamic loader finds ``library`` and its dependencies, else the missing one's name.

    A failure other than a missing file (an unresolved symbol of a library that another one loads first)
    proves nothing about the host: reported as loadable, and ONNX Runtime has the last word.
    """
    try:
        ctypes.CDLL(library, mode=os.RTLD_LAZY | os.RTLD_LOCAL)
    except OSError as err:
        text = str(err)
        if "cannot open shared object file" in text:
            return text.split(":", 1)[0].strip() or library
    return None
