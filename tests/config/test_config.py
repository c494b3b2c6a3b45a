"""crosspose.config: YAML + env overrides into one typed tree; located errors; the validate command."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from crosspose.cli import app
from crosspose.config import Config, ConfigError, config_from_dict, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config.example.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "crosspose.yaml"
    p.write_text(text)
    return p


def test_example_config_validates() -> None:
    cfg = load_config(EXAMPLE, environ={})
    assert cfg.camera_names == ["cam1", "cam2", "cam3", "cam4"]
    assert cfg.cameras[0].source == "0"  # an int index in YAML becomes the source string
    assert cfg.cameras[3].remote
    assert cfg.cameras[3].jpeg_quality == 90
    assert cfg.sync_tolerance_ns() == int(0.5e9 / 30)  # half a period of the slowest (30 fps) camera


def test_defaults_and_tolerance() -> None:
    cfg = config_from_dict({"cameras": [{"name": "a", "source": "synthetic"}]})
    assert cfg.bus.hwm == 4
    assert cfg.bus.frames_endpoint.startswith("ipc://")
    assert cfg.api.token is None
    assert cfg.inference.backend == "network"
    # The cores shared out among the inference workers (crosspose.runtime.workers), as many as auto gives.
    assert (cfg.inference.threads, cfg.inference.workers) == (0, "auto")
    assert cfg.sync_tolerance_ns() == int(0.5e9 / 30)  # default 30 fps
    assert cfg.sync_max_wait_ns() == cfg.sync_tolerance_ns()
    cfg = config_from_dict(
        {"cameras": [{"name": "a", "source": "x.mp4", "fps": 60}], "sync": {"tolerance_ms": 5}}
    )
    assert cfg.sync_tolerance_ns() == 5_000_000


def test_every_field_is_described() -> None:
    def walk(model: type) -> None:
        for name, f in model.model_fields.items():  # type: ignore[attr-defined]
            assert f.description, f"{model.__name__}.{name} has no description"
            ann = f.annotation
            for sub in getattr(ann, "__args__", (ann,)):
                if isinstance(sub, type) and hasattr(sub, "model_fields"):
                    walk(sub)

    walk(Config)


def test_errors_are_located(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        """
cameras:
  - {name: a, source: "0"}
  - {name: b, source: "1"}
  - {name: c, source: "", fps: -1}
bus: {hwm: 0, frames_endpont: "tcp://x:1"}
inference: {device: tpu, threads: -1}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(p, environ={})
    errors = "\n".join(info.value.errors)
    assert "cameras[2].source:" in errors
    assert "cameras[2].fps:" in errors
    assert "bus.hwm:" in errors
    assert "bus.frames_endpont: unknown key" in errors
    assert "inference.device:" in errors
    assert "inference.threads:" in errors


def test_duplicate_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="used twice"):
        config_from_dict({"cameras": [{"name": "a", "source": "0"}, {"name": "a", "source": "1"}]})
    with pytest.raises(ConfigError, match=r"cameras\[0\]\.name"):
        config_from_dict({"cameras": [{"name": "cam 1", "source": "0"}]})
    with pytest.raises(ConfigError, match="cameras"):
        config_from_dict({"cameras": []})


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: not valid YAML"):
        load_config(_write(tmp_path, "cameras:\n  - name: [a\n"), environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml", environ={})
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_write(tmp_path, "- 1\n- 2\n"), environ={})


def test_env_overrides(tmp_path: Path) -> None:
    p = _write(tmp_path, "cameras:\n  - {name: a, source: synthetic}\napi: {port: 8000}\n")
    env = {
        "CROSSPOSE_API_TOKEN": "s3cret",
        "CROSSPOSE__API__PORT": "9001",
        "CROSSPOSE__SYNC__TOLERANCE_MS": "4.5",
        "CROSSPOSE__CAMERAS__0__FPS": "25",
        "CROSSPOSE__LOGGING__LEVEL": "debug",
        "UNRELATED": "x",
    }
    cfg = load_config(p, environ=env)
    assert cfg.api.port == 9001
    assert cfg.api.token is not None
    assert cfg.api.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(cfg)
    assert cfg.sync.tolerance_ms == 4.5
    assert cfg.cameras[0].fps == 25
    assert cfg.logging.level == "DEBUG"
    with pytest.raises(ConfigError, match=r"api\.prot: unknown key"):
        load_config(p, environ={"CROSSPOSE__API__PROT": "1"})
    with pytest.raises(ConfigError, match=r"api\.port"):
        load_config(p, environ={"CROSSPOSE__API__PORT": "many"})


def test_validate_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "validate", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    assert "cam4: rtsp://" in ok.output
    bad = _write(tmp_path, "cameras:\n  - {name: a, source: '0', colour: red}\n")
    res = runner.invoke(app, ["config", "validate", str(bad)])
    assert res.exit_code == 1
    assert "cameras[0].colour: unknown key" in res.output


def test_capture_section_defaults_and_located_errors(tmp_path: Path) -> None:
    cfg = config_from_dict({"cameras": [{"name": "a", "source": "0"}]})
    assert (cfg.capture.max_persons, cfg.capture.volume) == (1, None)  # volume derived from the calibration
    cfg = config_from_dict({"cameras": [{"name": "a", "source": "0"}],
                            "capture": {"volume": {"min": [-2, -2, 0], "max": [2, 2.5, 2.5]}}})
    assert cfg.capture.volume is not None
    assert cfg.capture.volume.max == (2.0, 2.5, 2.5)
    path = _write(tmp_path, """
cameras:
  - {name: a, source: "0"}
capture:
  max_persons: 9
  volume: {min: [0, 0, 0], max: [1, -1, 2]}
""")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 1
    out = result.output
    assert "capture.max_persons: Input should be less than or equal to 8" in out
    assert "capture.volume: Value error, min [0.0, 0.0, 0.0] must be below max [1.0, -1.0, 2.0]" in out
    with pytest.raises(ConfigError, match=r"capture\.volume\.max"):
        config_from_dict({"cameras": [{"name": "a", "source": "0"}],
                          "capture": {"volume": {"min": [0, 0, 0], "max": [1, 1]}}})
    with pytest.raises(ConfigError, match=r"capture\.max_persons"):
        config_from_dict({"cameras": [{"name": "a", "source": "0"}], "capture": {"max_persons": 0}})
    cfg = config_from_dict({"cameras": [{"name": "a", "source": "0"}], "capture": {"max_persons": 3}})
    assert cfg.capture.max_persons == 3


def test_capture_search_views_default_and_bounds() -> None:
    """``capture.search_views``: the pipeline's default (2) and at least 1 (the live backend passes it to its
    FramePipeline, whose bound tests/inference/test_persons.py checks)."""
    from crosspose.inference.pipeline import SEARCH_VIEWS

    cfg = config_from_dict({"cameras": [{"name": "a", "source": "0"}]})
    assert cfg.capture.search_views == SEARCH_VIEWS
    with pytest.raises(ConfigError, match=r"capture\.search_views"):
        config_from_dict({"cameras": [{"name": "a", "source": "0"}], "capture": {"search_views": 0}})
    cfg = config_from_dict({"cameras": [{"name": "a", "source": "0"}], "capture": {"search_views": 4}})
    assert cfg.capture.search_views == 4
