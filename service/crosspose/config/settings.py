"""The service's one typed settings tree (DESIGN §3/§4): cameras, bus, sync, inference, solver, api …

Every model rejects unknown keys and describes each field; :func:`crosspose.config.load_config`
builds it from a YAML file plus environment overrides.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    field_validator,
    model_validator,
)

from crosspose.solver.options import SolverOptions

DEFAULT_FPS = 30.0
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def default_ipc_dir() -> str:
    """Folder of the default ``ipc://`` endpoints: one per user, so two users never collide."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return str(Path(tempfile.gettempdir()) / f"crosspose-{uid}")


def _ipc(name: str) -> str:
    return f"ipc://{default_ipc_dir()}/{name}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class CameraConfig(_Model):
    """One camera: where its frames come from and how its grabber publishes them."""

    name: str = Field(description="Camera name, as in the calibration ([A-Za-z0-9_-]+).")
    source: str = Field(
        description=(
            "Frame source: a device index ('0'), '/dev/videoN', an rtsp:// or http(s):// URL, a video "
            "file path, or 'synthetic' (optionally 'synthetic?seed=0&index=1&cameras=4')."
        )
    )
    fps: float | None = Field(
        default=None, gt=0, description="Frames per second to pace at; None = the source's own rate."
    )
    loop: bool = Field(default=False, description="Replay a video file from the start when it ends.")
    width: int | None = Field(default=None, gt=0, description="Frame width to request or resize to (px).")
    height: int | None = Field(default=None, gt=0, description="Frame height to request or resize to (px).")
    jpeg_quality: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="JPEG-encode frames at this quality (remote grabbers); None = raw BGR buffers.",
    )
    remote: bool = Field(
        default=False, description="The grabber runs on another host and connects in (not started here)."
    )
    preload: bool = Field(
        default=False,
        description=(
            "Video files only: decode the whole file once into memory (after any resize) and replay it "
            "from there, so a small machine can replay several HD files at their own rate."
        ),
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"camera name {v!r} may only use letters, digits, '_' and '-'")
        return v

    @field_validator("source", mode="before")
    @classmethod
    def _source_to_str(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v

    @field_validator("source")
    @classmethod
    def _check_source(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("source must not be empty")
        return v


class CurveConfig(_Model):
    """CURVE authentication of the frames link: the server's secret key and the allowed grabbers."""

    server_secret_key: Path = Field(
        description="Certificate file with the server's secret key (from `crosspose keys generate`)."
    )
    client_public_keys: Path = Field(
        description="Folder of allowed client public-key certificates (*.key); any other client is refused."
    )


class BusConfig(_Model):
    """ZeroMQ endpoints of the pipeline. Grabbers connect a PUB to the frames endpoint that sync binds."""

    frames_endpoint: str = Field(
        default_factory=lambda: _ipc("frames"),
        description="Sync binds here, grabbers connect in (tcp://0.0.0.0:PORT lets remote grabbers in).",
    )
    framesets_endpoint: str = Field(
        default_factory=lambda: _ipc("framesets"), description="Sync publishes frame sets here (bound)."
    )
    heatmaps_endpoint: str = Field(
        default_factory=lambda: _ipc("heatmaps"), description="Inference publishes heatmaps here (bound)."
    )
    skeletons_endpoint: str = Field(
        default_factory=lambda: _ipc("skeletons"), description="The solver publishes skeletons here (bound)."
    )
    control_endpoint: str = Field(
        default_factory=lambda: _ipc("control"), description="Control-plane messages (calibration.updated …)."
    )
    status_endpoint: str = Field(
        default_factory=lambda: _ipc("status"), description="Stage heartbeats and counters (status.<stage>.)."
    )
    hwm: int = Field(
        default=4,
        ge=1,
        le=10_000,
        description="High-water mark (messages) of every data socket; small = low latency.",
    )
    curve: CurveConfig | None = Field(
        default=None, description="CURVE keys for the frames link; None = no authentication."
    )
    local_frames_endpoint: str = Field(
        default_factory=lambda: _ipc("frames-local"),
        description="With `curve` set, sync also binds this unauthenticated endpoint for the grabbers "
        "the service starts itself (keep it ipc:// on the fusion host: it must not be reachable remotely).",
    )
    allow_insecure_tcp: bool = Field(
        default=False,
        description="Start even with a tcp:// endpoint that other hosts can reach and nothing authenticates "
        "(the frames endpoint without `curve`, or any other one): anyone on that network could then send "
        "frames, heartbeats or control messages. Off: the service refuses to start and says which.",
    )

    def for_local_grabbers(self) -> BusConfig:
        """The bus as a grabber started by the service itself sees it: with CURVE on, its frames go to
        the local unauthenticated endpoint (it holds no client key); otherwise unchanged."""
        if self.curve is None:
            return self
        return self.model_copy(update={"frames_endpoint": self.local_frames_endpoint})

    @field_validator(
        "frames_endpoint",
        "framesets_endpoint",
        "heatmaps_endpoint",
        "skeletons_endpoint",
        "control_endpoint",
        "status_endpoint",
        "local_frames_endpoint",
    )
    @classmethod
    def _check_endpoint(cls, v: str) -> str:
        if not re.match(r"^(tcp|ipc|inproc)://.+", v):
            raise ValueError(f"endpoint {v!r} must start with tcp://, ipc:// or inproc://")
        return v


class SyncConfig(_Model):
    """Frame-set assembly."""

    tolerance_ms: float | None = Field(
        default=None,
        gt=0,
        description="Max |t_capture - t_ref| in a set (ms); None = half the slowest camera's frame period.",
    )
    max_wait_ms: float | None = Field(
        default=None,
        gt=0,
        description="Extra wait for a silent camera beyond a set's window (ms); None = the tolerance.",
    )
    max_frame_age_ms: float = Field(
        default=1000.0,
        gt=0,
        description="A frame arriving later than this after its capture (on sync's clock; a remote "
        "camera's mapped onto it) is dropped as stale, and one stamped ahead of arrival by more than the "
        "tolerance as future (ms).",
    )


_RUNTIME = ("Inference runtime: 'auto' (default: the fastest measured here, see 'precision'), 'onnxruntime', "
            "'openvino' (CPU) or 'torch'; the other settings follow from it.")
_PRECISION = ("Arithmetic of the network: 'auto' (bf16 backbone with f32 fusion where the CPU has native "
              "bf16 and OpenVINO runs, f32 elsewhere), 'f32', or 'bf16' (the backbone in bf16, the fusion "
              "always in f32; OpenVINO only, refused at start on a CPU without native bf16).")
_THREADS = ("Intra-op threads of each inference worker on the CPU; 0 (default) = the host's cores shared out "
            "among the workers (cores // workers, at least 1), so the workers together use every core once.")
_WORKERS = ("Inference worker processes, each frame set to an idle one (each crops from the latest track it "
            "has; the solver publishes in capture order and drops a set that finishes after a newer one): "
            "'auto' (default) = 2 on a CPU-only host with 2 or more cores, 1 with a GPU; or a number 1-16.")
_NICE = ("How much lower than the service's other stages the inference workers run (the os.nice "
         "increment of their processes): 'auto' (default) = 5 with several workers, which keep every core "
         "busy, so that the short stages on a set's way (sync, solver, API, grabbers) run as soon as they "
         "have work instead of waiting for a core behind a network run; 0 with one worker; or 0-19.")
_DECODE = ("Size at which the inference workers decode the cameras' JPEG frames: 'full' = as sent; "
           "'auto' (default) = at 1/2 or 1/4 of that size per side (libjpeg's scaled IDCT, less work) while "
           "every crop of the set still spans at least the network's 256-pixel input in the reduced frame "
           "(so the crop still downsamples; a 15 % margin before a larger reduction), full size whenever "
           "the person detector may run (cold start, someone lost, a view without a crop, a search); with "
           "'heatmaps: fused' only ('raw' maps decode whole: they lost 1.2 points of detection at 1/2). Raw "
           "frames, previews, recording and calibration captures use the frames as sent.")
#: What to install for ``runtime: openvino``.
OPENVINO_HINT = "pip install 'crosspose[openvino]' (openvino>=2026.4)"

Precision = Literal["auto", "f32", "bf16"]


class VolumeConfig(_Model):
    """An axis-aligned box in world metres (Z up, floor at z = 0)."""

    min: tuple[float, float, float] = Field(description="The box's lowest x, y, z corner (m).")
    max: tuple[float, float, float] = Field(description="The box's highest x, y, z corner (m).")

    @model_validator(mode="after")
    def _ordered(self) -> VolumeConfig:
        if not all(lo < hi for lo, hi in zip(self.min, self.max, strict=True)):
            raise ValueError(f"min {list(self.min)} must be below max {list(self.max)} on every axis")
        return self


#: Most performers ``capture.max_persons`` accepts (the network runs every one's crops per frame set).
MAX_PERSONS = 8


class CaptureConfig(_Model):
    """Who is captured: how many people, and where."""

    max_persons: int = Field(
        default=1,
        ge=1,
        le=MAX_PERSONS,
        description="Most people tracked at once, each with their own id, crops and solver state (1: the "
        "person most views agree on inside the volume). Everyone's crops go through the network in one call: "
        "each extra person costs about one more performer's network time per frame set.",
    )
    search_views: int = Field(
        default=2,
        ge=1,
        le=64,
        description="While someone is followed and someone lost or new is looked for, most camera views "
        "the person detector looks at per frame set (round-robin, the oldest looked-at first): the per-set "
        "cost of a search stays bounded. With nobody followed it looks at every view at once (no network "
        "runs then).",
    )
    volume: VolumeConfig | None = Field(
        default=None,
        description="Where a performer's root (mid-hips) may be; a person outside is never chosen, never "
        "reported and never takes a performer's track. None: the floor region seen by at least 3 cameras, "
        "0-2.5 m high, derived from the calibration (again whenever it changes).",
    )


class _InferenceFields(_Model):
    """The fusion network stage: what every inference runtime shares."""

    runtime: str = Field(description=_RUNTIME)  # first in every dump; each runtime's model narrows it
    model: Path | None = Field(
        default=None, description="ONNX file of the fusion network; None = the default built one. The person "
        "detector is read from crosspose_detector.onnx beside it (`crosspose model export` writes both). "
        "Runtimes that build the network themselves (torch) do not read it.",
    )
    heatmaps: Literal["fused", "raw"] = Field(
        default="fused",
        description="Heatmaps the solver gets: 'fused' (cross-view fusion output) or 'raw' (per view).",
    )
    backend: Literal["network", "simulated"] = Field(
        default="network",
        description="'network' runs the model; 'simulated' = synthetic-studio heatmaps, no network.",
    )
    precision: Precision = Field(default="auto", description=_PRECISION)
    workers: Literal["auto"] | int = Field(default="auto", description=_WORKERS)
    nice: Literal["auto"] | int = Field(default="auto", description=_NICE)
    decode: Literal["auto", "full"] = Field(default="auto", description=_DECODE)

    @field_validator("workers", mode="before")
    @classmethod
    def _check_workers(cls, value: Any) -> Any:
        return _auto_or_int(value, 1, 16, "a number of inference worker processes")

    @field_validator("nice", mode="before")
    @classmethod
    def _check_nice(cls, value: Any) -> Any:
        return _auto_or_int(value, 0, 19, "an os.nice increment")


def _auto_or_int(value: Any, low: int, high: int, what: str) -> Any:
    """``value`` if it is ``"auto"`` or an integer in ``[low, high]`` (a digit string, as an environment
    override gives, read as one); otherwise a ValueError naming ``what`` and the range."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        return value
    raise ValueError(f"'auto' or {what} from {low} to {high}, got {value!r}")


def _f32_only(runtime: str, precision: str) -> str:
    if precision == "bf16":
        raise ValueError(f"{runtime} runs the network in f32; the bf16 backbone is OpenVINO's (runtime "
                         "'openvino', or 'auto' on a CPU with native bf16)")
    return precision


class AutoInference(_InferenceFields):
    """``runtime: auto`` (the default): ONNX Runtime on a GPU host; on the CPU, OpenVINO with a bf16 backbone
    where the CPU has native bf16 and OpenVINO is installed, else f32 on the faster runtime measured
    (:mod:`crosspose.inference.runtimes.auto`)."""

    runtime: Literal["auto"] = Field(default="auto", description=_RUNTIME)
    device: Literal["auto", "cpu", "cuda", "tensorrt"] = Field(
        default="auto", description="'auto': the GPU through ONNX Runtime where one can start, else the CPU; "
        "'cpu' never probes the GPU; 'cuda' / 'tensorrt' run ONNX Runtime on that provider."
    )
    threads: int = Field(default=0, ge=0, le=256, description=_THREADS)


class OnnxRuntimeInference(_InferenceFields):
    """``runtime: onnxruntime``: the exported ONNX files in ONNX Runtime (f32)."""

    runtime: Literal["onnxruntime"] = Field(default="onnxruntime", description=_RUNTIME)
    device: Literal["auto", "cpu", "cuda", "tensorrt"] = Field(
        default="auto", description="ONNX Runtime provider to ask for; 'auto' picks the best available."
    )
    threads: int = Field(default=0, ge=0, le=256, description=_THREADS)

    @field_validator("precision")
    @classmethod
    def _check_precision(cls, value: str) -> str:
        return _f32_only("ONNX Runtime", value)


class OpenVinoInference(_InferenceFields):
    """``runtime: openvino``: the exported ONNX files in OpenVINO on the CPU, compiled for the rig's camera
    count; ``precision`` bf16 runs the backbone in bf16 and the fusion in f32."""

    runtime: Literal["openvino"] = Field(default="openvino", validate_default=True, description=_RUNTIME)
    device: Literal["cpu"] = Field(default="cpu", description="OpenVINO device: the CPU.")
    threads: int = Field(default=0, ge=0, le=256, description=_THREADS)

    @field_validator("runtime")
    @classmethod
    def _check_installed(cls, value: str) -> str:
        if importlib.util.find_spec("openvino") is None:
            raise ValueError(f"runtime 'openvino' needs the openvino package, which is not installed here: "
                             f"{OPENVINO_HINT}; or use runtime 'auto' or 'onnxruntime'")
        return value


class TorchInference(_InferenceFields):
    """``runtime: torch``: the eager torch modules (reference and debugging; slower than ONNX Runtime on the
    CPU), built from the cached BlazePose and the default fusion weights."""

    runtime: Literal["torch"] = Field(default="torch", description=_RUNTIME)
    device: Literal["cpu", "cuda"] = Field(default="cpu", description="torch device to run on.")
    threads: int = Field(
        default=1, ge=0, le=256, description="torch intra-op threads of the inference process (0 = torch's "
        "default, one per core)."
    )

    @field_validator("precision")
    @classmethod
    def _check_precision(cls, value: str) -> str:
        return _f32_only("torch", value)


def _runtime_tag(value: Any) -> Any:
    """The ``inference`` section's runtime: its ``runtime`` key, ``auto`` where it has none."""
    if isinstance(value, dict):
        return value.get("runtime", "auto")
    return getattr(value, "runtime", "auto")


#: The ``inference`` section: one model per runtime, chosen by its ``runtime`` key (default auto).
#: The runtimes themselves are :mod:`crosspose.inference.runtimes`, one module per tag (``auto`` is
#: resolved there into one of the others, on the host that runs it).
InferenceConfig = Annotated[
    Annotated[AutoInference, Tag("auto")] | Annotated[OnnxRuntimeInference, Tag("onnxruntime")]
    | Annotated[OpenVinoInference, Tag("openvino")] | Annotated[TorchInference, Tag("torch")],
    Discriminator(_runtime_tag),
]

#: Sections discriminated by a key (location → key): their errors are reported without the tag
#: pydantic puts into the location (``inference.device``, not ``inference.torch.device``).
DISCRIMINATED: dict[tuple[str, ...], str] = {("inference",): "runtime"}


class SolverConfig(_Model):
    """The 3D solver stage."""

    skeleton: str = Field(
        default="crosspose-body32", description="Joint layout the solver solves in and the service publishes "
        "(a name of crosspose.skeleton: crosspose-body32, the full body, or h36m17; websocket clients may "
        "still ask for h36m17 messages with ?skeleton=h36m17).",
    )
    options: SolverOptions = Field(
        default_factory=SolverOptions,
        description="Options of crosspose.solver.Solver (the fields of crosspose.solver.SolverOptions; the "
        "nested refine_options, root_options and relabel_options as maps); unset ones keep their defaults.",
    )
    threads: int = Field(default=1, ge=1, le=256, description="torch threads of the solver process.")
    hold_ms: float = Field(
        default=40.0, ge=0, le=1000, description="With several inference workers: longest a set one worker "
        "finished is held for an older set another worker started, so that both are published in capture "
        "order (ms; 0: never held, the older set is dropped as stale when it comes after the newer one).",
    )

    @field_validator("skeleton")
    @classmethod
    def _check_skeleton(cls, v: str) -> str:
        from crosspose.skeleton import get_skeleton

        try:
            get_skeleton(v)
        except KeyError as err:
            raise ValueError(err.args[0]) from None
        return v

    def changed_options(self) -> dict[str, Any]:
        """The options set away from their defaults, by dotted name (``refine_options.radius``)."""
        changed: dict[str, Any] = {}

        def walk(prefix: str, values: dict[str, Any]) -> None:
            for key, value in values.items():
                if isinstance(value, dict):
                    walk(f"{prefix}{key}.", value)
                else:
                    changed[prefix + key] = value

        walk("", self.model_dump(include={"options"}, exclude_defaults=True).get("options", {}))
        return changed


class ApiConfig(_Model):
    """The HTTP / websocket API."""

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0 = any free port).")
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token for writes (or env CROSSPOSE_API_TOKEN); None = writes refused.",
    )
    max_upload_bytes: int = Field(
        default=1_000_000, gt=0, description="Largest calibration upload accepted (bytes)."
    )
    ws_queue: int = Field(
        default=64, ge=1, description="Messages queued per websocket client before the oldest drop."
    )
    preview_hz: float = Field(
        default=2.0, ge=0, description="Rate of camera preview images for the viewer (0 = off)."
    )
    skeleton_timeout_s: float = Field(
        default=2.0, gt=0, description="/api/v1/ready answers 503 when no skeleton was published for this "
        "long (s): frames that stop reaching the solver are seen even while every stage heartbeats.",
    )


class CalibrationConfig(_Model):
    """Where the calibration comes from and is stored."""

    file: Path | None = Field(
        default=None, description="Initial rig file (any format crosspose.calibration.load_rig reads)."
    )
    store: Path = Field(
        default=Path("calibration/store"), description="Folder of accepted calibrations with version history."
    )


class LoggingConfig(_Model):
    """Logging of every process."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Log level."
    )
    json_format: bool = Field(default=False, alias="json", description="One JSON object per log line.")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


class SupervisorConfig(_Model):
    """Process supervision."""

    restart_backoff_s: float = Field(
        default=0.5, gt=0, description="First restart delay of a crashed stage (s)."
    )
    restart_backoff_max_s: float = Field(default=10.0, gt=0, description="Longest restart delay (s).")
    heartbeat_s: float = Field(default=1.0, gt=0, description="Interval of stage heartbeats (s).")
    stage_timeout_s: float = Field(
        default=5.0, gt=0, description="A stage silent for this long counts as down (s)."
    )


class RecordingConfig(_Model):
    """Take recording (``crosspose.recording``): where takes go and how frames are stored."""

    enabled: bool = Field(default=True, description="Run the recorder stage (idle until a take starts).")
    store: Path = Field(default=Path("takes"), description="Folder of recorded takes (one sub-folder each).")
    frames: Literal["jpeg", "png", "none"] = Field(
        default="jpeg",
        description=(
            "Camera frames in a take: 'jpeg' (JPEG frames stored as received; raw frames encoded at "
            "jpeg_quality), 'png' (lossless, several times the CPU and disk), 'none' (timestamps only)."
        ),
    )
    jpeg_quality: int = Field(default=95, ge=50, le=100, description="JPEG quality for raw frames.")
    encode_threads: int = Field(
        default=2, ge=1, le=32, description="Threads encoding a frame set's raw frames in parallel."
    )
    nice: int = Field(
        default=0,
        ge=0,
        le=19,
        description="How much lower than the live stages the recorder runs (its os.nice increment). 0 "
        "(default): their priority, above niced inference workers. The recorder needs a fixed share of a "
        "core per frame set (receiving, encoding raw frames, writing) and a set it falls more than "
        "queue_sets behind on is lost from the take for good (counted), while inference only skips sets: "
        "niced, it got less than that share whenever other processes kept the cores busy.",
    )
    flush_s: float = Field(
        default=0.5, gt=0, le=1.0, description="Flush + fsync interval (s): at most this much is at risk."
    )
    queue_sets: int = Field(
        default=60,
        ge=4,
        le=10_000,
        description="Frame sets queued for a busy recorder before it loses some (memory: sets x frames).",
    )
    max_take_bytes: int | None = Field(
        default=None, gt=0, description="Stop a take (state 'failed') at this size (bytes); None = no cap."
    )
    min_free_bytes: int = Field(
        default=200_000_000, ge=0, description="Stop a take (state 'failed') when the disk has less free."
    )
    endpoint: str | None = Field(
        default=None,
        description="Sync publishes every frame set here for the recorder; None = by framesets_endpoint.",
    )

    def tap_endpoint(self, bus: BusConfig) -> str:
        """The recorder's frame-set endpoint: configured, or derived from ``bus.framesets_endpoint``
        (``ipc://…/framesets`` → ``ipc://…/framesets-record``; tcp port + 1000)."""
        if self.endpoint is not None:
            return self.endpoint
        base = bus.framesets_endpoint
        m = re.match(r"^(tcp://.+):(\d+)$", base)
        if m:
            return f"{m.group(1)}:{int(m.group(2)) + 1000}"
        return base + "-record"


class VmcConfig(_Model):
    """Live VMC protocol (OSC over UDP) to engines: VSeeFace, VirtualMotionCapture, EVMC4U, VMC4UE, VMC4B."""

    enabled: bool = Field(default=False, description="Send one VMC bundle per solved frame to every target.")
    targets: list[str] | dict[int, list[str]] = Field(
        default_factory=lambda: ["127.0.0.1:39539"],
        description=(
            "Receivers as host:port (default port 39539; IPv6: [addr]:port). A list: each gets every frame "
            "of the performer with the lowest live id (the one performer of a single-person capture). A map "
            "of performer id to its receivers ({0: ['127.0.0.1:39539'], 1: ['127.0.0.1:39540']}): each "
            "receiver gets that performer's frames only (status-only bundles while that id is not "
            "tracked). A receiver may follow one performer only."
        ),
    )
    send_hz: float = Field(
        default=0.0, ge=0, description="At most this many bundles per second (0 = every solved frame)."
    )
    root: Literal["pelvis", "floor"] = Field(
        default="floor",
        description=(
            "Model root: 'floor' (/VMC/Ext/Root/Pos on the floor under the pelvis, Hips at the pelvis "
            "height, as VMC senders do: the avatar stands even in receivers that ignore bone positions) or "
            "'pelvis' (root at the pelvis, Hips at local zero)."
        ),
    )
    diagnostics: bool = Field(
        default=False,
        description="Add /crosspose/frame (seq, t_publish_ns, t_send_ns) to each bundle (for benchmarks).",
    )

    @field_validator("targets", mode="before")
    @classmethod
    def _one_target_per_person(cls, v: Any) -> Any:
        """A person's single receiver may be written as a string: ``{1: "host:port"}``."""
        if isinstance(v, dict):
            return {k: [t] if isinstance(t, str) else t for k, t in v.items()}
        return v

    @field_validator("targets")
    @classmethod
    def _check_targets(cls, v: list[str] | dict[int, list[str]]) -> list[str] | dict[int, list[str]]:
        from crosspose.streaming.transport import parse_target

        seen: dict[tuple[str, int], int | None] = {}
        for person, targets in sorted(v.items()) if isinstance(v, dict) else [(None, v)]:
            if person is not None and person < 0:
                raise ValueError(f"performer id {person} is negative; ids are integers >= 0")
            if person is not None and not targets:
                raise ValueError(f"performer {person} has no receiver (give one host:port or a list)")
            for target in targets:
                where = parse_target(target, 39539)
                if where in seen:
                    first = seen[where]
                    raise ValueError(
                        f"receiver {target!r} is listed twice"
                        + ("" if person is None else f" (performers {first} and {person})")
                        + ": a receiver follows one performer"
                    )
                seen[where] = person
        return v

    def routes(self) -> tuple[list[str], list[int | None]]:
        """``(targets, persons)``: every receiver and, at the same index, the performer id it follows (None:
        the lowest live id), as :class:`crosspose.streaming.VmcSender` takes them."""
        if isinstance(self.targets, dict):
            pairs = [(t, p) for p, ts in sorted(self.targets.items()) for t in ts]
            return [t for t, _ in pairs], [p for _, p in pairs]
        return list(self.targets), [None] * len(self.targets)


class StreamingConfig(_Model):
    """Per-frame joint rotations in the solver stage and their live outputs."""

    rotations: bool = Field(
        default=True,
        description=(
            "Compute local joint rotations for every solved frame (crosspose.motion.LiveRotations): the "
            "websocket's ?rotations=true payload and VMC need them."
        ),
    )
    vmc: VmcConfig = Field(default_factory=VmcConfig, description="VMC over OSC/UDP.")


class FilterGroupConfig(_Model):
    """One Euro filter parameters of one joint group (unset = the group's default)."""

    min_cutoff: float | None = Field(default=None, gt=0, description="Cutoff at rest (Hz): lower = smoother.")
    beta: float | None = Field(default=None, ge=0, description="Speed coefficient: higher = less lag moving.")
    d_cutoff: float | None = Field(default=None, gt=0, description="Cutoff of the speed estimate (Hz).")


class FilterConfig(_Model):
    """Live One Euro filter of the published joints (applied in the solver stage, before rotations)."""

    enabled: bool = Field(default=False, description="Filter the published joints (off: raw solver output).")
    groups: dict[Literal["torso", "head", "arms", "legs"], FilterGroupConfig] = Field(
        default_factory=dict,
        description="Per joint group (torso, head, arms, legs) overrides of motion.FilterSettings.default().",
    )


class Config(_Model):
    """The whole service configuration."""

    cameras: list[CameraConfig] = Field(min_length=1, description="The cameras, in rig order.")
    bus: BusConfig = Field(default_factory=BusConfig, description="ZeroMQ endpoints.")
    sync: SyncConfig = Field(default_factory=SyncConfig, description="Frame-set assembly.")
    capture: CaptureConfig = Field(
        default_factory=CaptureConfig, description="Who is captured: how many people, and where."
    )
    inference: InferenceConfig = Field(
        default_factory=AutoInference,
        description="Fusion network and the runtime that runs it (discriminated by its 'runtime' key).",
    )
    solver: SolverConfig = Field(default_factory=SolverConfig, description="3D solver.")
    api: ApiConfig = Field(default_factory=ApiConfig, description="HTTP / websocket API.")
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig, description="Calibration.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging.")
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig, description="Process supervision.")
    recording: RecordingConfig = Field(default_factory=RecordingConfig, description="Take recording.")
    streaming: StreamingConfig = Field(
        default_factory=StreamingConfig, description="Joint rotations and live streaming (VMC)."
    )
    filter: FilterConfig = Field(default_factory=FilterConfig, description="Live One Euro joint filter.")

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.name in seen:
                raise ValueError(f"camera name {cam.name!r} is used twice; names must be unique")
            seen.add(cam.name)
        return self

    @model_validator(mode="after")
    def _one_worker_for_several_persons(self) -> Config:
        workers = self.inference.workers
        if self.capture.max_persons > 1 and workers != "auto" and int(workers) > 1:
            raise ValueError(f"inference.workers {workers} with capture.max_persons "
                             f"{self.capture.max_persons}: several performers are followed by one inference "
                             "worker (their ids live there); set inference.workers to 1 or auto")
        return self

    @property
    def camera_names(self) -> list[str]:
        """Names of the cameras in rig order."""
        return [c.name for c in self.cameras]

    def sync_tolerance_ns(self) -> int:
        """Frame-set tolerance (ns): configured, or half the frame period of the slowest camera."""
        if self.sync.tolerance_ms is not None:
            return int(self.sync.tolerance_ms * 1e6)
        slowest = min((c.fps or DEFAULT_FPS) for c in self.cameras)
        return int(0.5e9 / slowest)

    def sync_max_wait_ns(self) -> int:
        """Longest wait for a late camera (ns): configured, or the tolerance."""
        if self.sync.max_wait_ms is not None:
            return int(self.sync.max_wait_ms * 1e6)
        return self.sync_tolerance_ns()
