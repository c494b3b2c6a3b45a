"""Reading a :class:`~crosspose.config.Config` from YAML plus environment overrides, with located errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crosspose.config.settings import DISCRIMINATED, Config

ENV_PREFIX = "CROSSPOSE__"
TOKEN_ENV = "CROSSPOSE_API_TOKEN"


class ConfigError(ValueError):
    """A configuration that cannot be used; ``errors`` lists ``"location: message"`` lines."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"invalid configuration {source}:\n{lines}")


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _untagged(loc: tuple[int | str, ...], error_type: str, msg: str,
              ctx: dict[str, Any]) -> tuple[tuple[int | str, ...], str]:
    """A discriminated section's error (:data:`~crosspose.config.settings.DISCRIMINATED`) located as the
    user wrote it: ``inference.device …(with runtime: torch)``, not pydantic's ``inference.torch.device``;
    an unknown tag at the discriminating key itself."""
    for section, key in DISCRIMINATED.items():
        n = len(section)
        if loc[:n] != section:
            continue
        if error_type == "union_tag_invalid" and len(loc) == n:
            expected = ctx.get("expected_tags")
            return (*section, key), f"unknown {key} {ctx.get('tag')!r}; expected one of {expected}"
        if len(loc) > n:
            return (*section, *loc[n + 1:]), f"{msg} (with {key}: {loc[n]})"
    return loc, msg


def format_validation_error(err: ValidationError) -> list[str]:
    """One ``"cameras[2].source: message"`` line per pydantic error."""
    lines = []
    for e in err.errors():
        msg = e["msg"]
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):  # (the latter: dataclasses)
            msg = "unknown key (not a setting; check the spelling)"
        loc, msg = _untagged(tuple(e["loc"]), e["type"], msg, dict(e.get("ctx") or {}))
        lines.append(f"{_location(loc)}: {msg}")
    return lines


def _env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``CROSSPOSE__SECTION__FIELD=value`` (values parsed as YAML scalars) and the API token."""
    for key, raw in sorted(environ.items()):
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        node: Any = data
        for part in path[:-1]:
            if isinstance(node, list):
                node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
            else:
                node = node.setdefault(part, {}) if isinstance(node, dict) else None
            if node is None:
                raise ConfigError(f"(environment {key})", [f"{'.'.join(path)}: no such setting to override"])
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        last = path[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"(environment {key})", [f"{'.'.join(path)}: no such setting to override"])
    token = environ.get(TOKEN_ENV)
    if token:
        api = data.setdefault("api", {})
        if not isinstance(api, dict):
            raise ConfigError(f"(environment {TOKEN_ENV})", ["api: must be a mapping"])
        api["token"] = token
    return data


def config_from_dict(
    data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, source: str = "(dict)"
) -> Config:
    """Validate a mapping (env overrides applied when ``environ`` is given) into a :class:`Config`."""
    import copy

    d = copy.deepcopy(dict(data))
    if environ is not None:
        d = _env_overrides(d, environ)
    try:
        return Config.model_validate(d)
    except ValidationError as err:
        raise ConfigError(source, format_validation_error(err)) from None


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    """Read a YAML config file, apply environment overrides (``os.environ`` by default), validate.

    Raises:
        ConfigError: the file is missing, not YAML, or any setting is invalid (all errors listed,
            each with its location such as ``cameras[2].source``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(p), [f"cannot read the file: {err.strerror or err}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(str(p), [f"{where}not valid YAML ({getattr(err, 'problem', err)})"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(p), [f"(top level): must be a mapping of sections, got {type(data).__name__}"])
    return config_from_dict(data, environ=os.environ if environ is None else environ, source=str(p))
