#!/usr/bin/env python3
"""Container health check: exit 0 when the API answers ``GET /api/v1/health`` with 200, else 1.

The port is ``$CROSSPOSE__API__PORT``, else ``api.port`` of ``$CROSSPOSE_CONFIG``, else 8000;
``$CROSSPOSE_HEALTH_URL`` overrides the whole URL. Standard library (plus PyYAML, which crosspose needs).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def config_port() -> int:
    """``api.port`` of ``$CROSSPOSE_CONFIG`` (8000 when it is not readable or not set there)."""
    try:
        import yaml

        with open(os.environ.get("CROSSPOSE_CONFIG", "/etc/crosspose/config.yaml")) as f:
            data = yaml.safe_load(f)
        return int(data["api"]["port"])
    except Exception:  # no config, no PyYAML, no such key: the image's default
        return 8000


def health_url() -> str:
    explicit = os.environ.get("CROSSPOSE_HEALTH_URL")
    if explicit:
        return explicit
    port = os.environ.get("CROSSPOSE__API__PORT") or str(config_port())
    return f"http://127.0.0.1:{port}/api/v1/health"


def main() -> int:
    url = health_url()
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            if response.status == 200:
                return 0
            print(f"unhealthy: {url} answered {response.status}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
