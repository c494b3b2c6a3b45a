"""Third-party data and weights that ship inside PyPI packages, fetched with pip and cached.

Nothing here talks to a model hub: every asset is one fixed file of a PyPI release, downloaded once
with ``pip download`` (explicit ``--only-binary``/``--no-binary`` flags, so it works from any host
Python), checked against its sha256, and read straight from the archive. The cache lives in
``$CROSSPOSE_CACHE`` (default ``~/.cache/crosspose``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PypiAsset:
    """One release file on PyPI.

    Attributes:
        project: PyPI project name.
        version: exact release.
        filename: the file pip fetches (wheel or sdist).
        sha256: expected digest of that file.
        licence: the licence under which we use its contents.
        description: what we use it for.
        pip_flags: extra ``pip download`` flags that pin the one file we want, e.g. a platform
            wheel requested for a fixed Python and platform whatever the host runs.
    """

    project: str
    version: str
    filename: str
    sha256: str
    licence: str
    description: str
    pip_flags: tuple[str, ...] = ()

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith((".tar.gz", ".zip")) and not self.filename.endswith(".whl")


ASSETS: dict[str, PypiAsset] = {
    "pose2sim-0.10.49": PypiAsset(
        "pose2sim", "0.10.49", "pose2sim-0.10.49-py3-none-any.whl",
        "403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1", "BSD-3-Clause",
        "4 synchronized real cameras (1088x1920, 60 fps) and their Qualisys calibration",
    ),
    "pose2sim-0.8.4": PypiAsset(
        "pose2sim", "0.8.4", "pose2sim-0.8.4-py3-none-any.whl",
        "d16e9bbbc38cdd210ff7ce7c4dea91ce4274012f05a27951dd33d4db95588e81", "BSD-3-Clause",
        "OpenPose BODY_25B 2D keypoints of the demo footage",
    ),
    "pose2sim-0.4.15": PypiAsset(
        "pose2sim", "0.4.15", "pose2sim-0.4.15-py3-none-any.whl",
        "9325774a2789355229acb5753ff468e8f9dd57bd2e396a192a5e2a0c1d10008c", "BSD-3-Clause",
        "the demo rig as an anipose-style TOML and Pose2Sim's 3D output (.trc)",
    ),
    "bvhtoolbox-0.1.3": PypiAsset(
        "bvhtoolbox", "0.1.3", "bvhtoolbox-0.1.3.tar.gz",
        "2d9dcae87cd6bfa28c89463450de84497e612682ca0697ea088fc7f2ef0f937f", "MIT",
        "a real BVH motion clip (tests/example_files)",
    ),
    "mediapipe-0.10.21": PypiAsset(
        "mediapipe", "0.10.21", "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
        "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3", "Apache-2.0",
        "BlazePose-full landmark and pose-detection .tflite weights (read, never installed)",
        pip_flags=(
            "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "--implementation", "cp",
        ),
    ),
}


class AssetError(RuntimeError):
    """An asset could not be fetched or did not match its checksum."""


def cache_dir() -> Path:
    """The asset cache folder (``$CROSSPOSE_CACHE`` or ``~/.cache/crosspose``), created on demand."""
    root = Path(os.environ.get("CROSSPOSE_CACHE") or Path.home() / ".cache" / "crosspose")
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _get(key: str) -> PypiAsset:
    try:
        return ASSETS[key]
    except KeyError:
        raise KeyError(f"unknown asset {key!r}; known: {', '.join(ASSETS)}") from None


def fetch(key: str) -> Path:
    """Path of the asset's archive in the cache, downloading it with pip the first time."""
    asset = _get(key)
    target = cache_dir() / "pypi" / asset.filename
    if target.exists() and sha256_file(target) == asset.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        binary = ["--no-binary", ":all:"] if asset.is_sdist else ["--only-binary", ":all:"]
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--quiet", *binary, *asset.pip_flags, "--dest", tmp, f"{asset.project}=={asset.version}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        got = Path(tmp) / asset.filename
        if done.returncode != 0 or not got.exists():
            raise AssetError(
                f"could not download {asset.filename} from PyPI with pip "
                f"(exit {done.returncode}): {done.stderr.strip()[-800:]}"
            )
        digest = sha256_file(got)
        if digest != asset.sha256:
            raise AssetError(f"{asset.filename}: sha256 {digest} does not match the expected {asset.sha256}")
        os.replace(got, target)
    return target


def extract(key: str, member: str) -> Path:
    """Path of one file from inside the asset's archive (extracted into the cache once).

    ``member`` is the path inside the wheel, or inside the sdist below its top folder.
    """
    asset = _get(key)
    out = cache_dir() / "extracted" / key / member
    if out.exists():
        return out
    archive = fetch(key)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        if asset.is_sdist:
            with tarfile.open(archive) as tar:
                top = f"{asset.project}-{asset.version}/"
                src = tar.extractfile(top + member)
                if src is None:
                    raise KeyError(member)
                with src, tmp.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        else:
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    except KeyError:
        tmp.unlink(missing_ok=True)
        raise AssetError(f"{asset.filename} has no member {member!r}") from None
    os.replace(tmp, out)
    return out


def list_members(key: str, prefix: str = "") -> list[str]:
    """Names of the archive's files that start with ``prefix`` (sdist names without the top folder)."""
    asset = _get(key)
    archive = fetch(key)
    if asset.is_sdist:
        top = f"{asset.project}-{asset.version}/"
        with tarfile.open(archive) as tar:
            names = [n[len(top):] for n in tar.getnames() if n.startswith(top)]
    else:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
    return sorted(n for n in names if n.startswith(prefix))


def extract_tree(key: str, prefix: str) -> Path:
    """Extract every file under ``prefix`` and return the folder that holds them."""
    for name in list_members(key, prefix):
        if not name.endswith("/"):
            extract(key, name)
    return cache_dir() / "extracted" / key / prefix
