"""Reading and writing OpenCV FileStorage (YAML/XML) text in memory, for the opencv and easymocap formats."""

from __future__ import annotations

import re
from typing import Any

import cv2
import numpy as np

from crosspose.calibration.validation import CalibrationError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def looks_like(text: str) -> bool:
    head = text.lstrip()[:200]
    return head.startswith("%YAML") or "<opencv_storage>" in head


def open_text(data: bytes) -> Any:
    """A read-only ``cv2.FileStorage`` on the given YAML/XML text."""
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        raise CalibrationError(["the OpenCV FileStorage file is empty"])
    try:
        fs = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    except (cv2.error, SystemError) as exc:
        raise CalibrationError([f"not a readable OpenCV FileStorage (YAML/XML) file: {exc}"]) from None
    if not fs.isOpened():
        raise CalibrationError(["not a readable OpenCV FileStorage (YAML/XML) file"])
    return fs


def value(node: Any) -> Any:
    """A node as Python/numpy: matrices and number lists as arrays, maps as dicts, scalars; None if empty."""
    if node is None or node.empty() or node.isNone():
        return None
    if node.isMap():
        keys = set(node.keys())
        if {"rows", "cols", "dt", "data"} <= keys:
            try:
                mat = node.mat()
            except cv2.error as exc:
                raise CalibrationError(
                    [f"a matrix in the FileStorage file cannot be read: {exc.err}"]
                ) from None
            if mat is not None:
                return np.asarray(mat, dtype=np.float64)
        return {k: value(node.getNode(k)) for k in node.keys()}  # noqa: SIM118 (a cv2.FileNode)
    if node.isSeq():
        items = [value(node.at(i)) for i in range(node.size())]
        if all(isinstance(x, (int, float)) for x in items):
            return np.asarray(items, dtype=np.float64)
        return items
    if node.isString():
        return node.string()
    if node.isInt():
        return int(node.real())
    return float(node.real())


def names(fs: Any, key: str = "names") -> list[str] | None:
    node = fs.getNode(key)
    if node.empty():
        return None
    if not node.isSeq():
        raise CalibrationError([f'"{key}" must be a list of camera names'])
    out = []
    for i in range(node.size()):
        item = node.at(i)
        out.append(item.string() if item.isString() else f"{item.real():g}")
    return out


def check_key_name(name: str, fmt: str) -> None:
    if not _KEY.match(f"K_{name}"):
        raise CalibrationError(
            [
                f"camera name {name!r} cannot be written in the {fmt} format (FileStorage keys allow "
                "letters, digits, '_' and '-'); rename the camera"
            ]
        )


class Writer:
    """A FileStorage writer to memory; ``kind`` is ``"yml"`` or ``"xml"``."""

    def __init__(self, kind: str = "yml") -> None:
        self._fs = cv2.FileStorage(f"calibration.{kind}", cv2.FILE_STORAGE_WRITE | cv2.FILE_STORAGE_MEMORY)

    def write(self, key: str, v: Any) -> None:
        if isinstance(v, np.ndarray):
            self._fs.write(key, np.ascontiguousarray(v, dtype=np.float64))
        else:
            self._fs.write(key, v)

    def strings(self, key: str, items: list[str]) -> None:
        self._fs.startWriteStruct(key, cv2.FILE_NODE_SEQ)
        for s in items:
            self._fs.write("", s)
        self._fs.endWriteStruct()

    def begin(self, key: str, kind: int) -> None:
        self._fs.startWriteStruct(key, kind)

    def end(self) -> None:
        self._fs.endWriteStruct()

    def text(self) -> bytes:
        return str(self._fs.releaseAndGetString()).encode("utf-8")
