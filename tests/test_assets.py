"""The PyPI asset cache: download once, verify the checksum, read members from the archive."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from crosspose import assets


@pytest.mark.network
def test_sdist_member_is_extracted_and_cached() -> None:
    path = assets.extract("bvhtoolbox-0.1.3", "tests/example_files/test_mocapbank.bvh")
    text = path.read_text()
    assert text.startswith("HIERARCHY")
    assert re.search(r"Frames:\s*455\b", text)
    # A second call reads the cache (same path, same content) without touching the archive.
    assert assets.extract("bvhtoolbox-0.1.3", "tests/example_files/test_mocapbank.bvh") == path


@pytest.mark.network
def test_wrong_checksum_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSPOSE_CACHE", str(tmp_path))
    bad = dataclasses.replace(assets.ASSETS["bvhtoolbox-0.1.3"], sha256="0" * 64)
    monkeypatch.setitem(assets.ASSETS, "bad-bvh", bad)
    with pytest.raises(assets.AssetError, match="does not match"):
        assets.fetch("bad-bvh")
    assert not (tmp_path / "pypi" / bad.filename).exists()


def test_unknown_asset_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"pose2sim-0\.10\.49"):
        assets.fetch("no-such-asset")


@pytest.mark.network
def test_missing_member_is_a_clear_error() -> None:
    with pytest.raises(assets.AssetError, match="no member"):
        assets.extract("bvhtoolbox-0.1.3", "tests/example_files/absent.bvh")
