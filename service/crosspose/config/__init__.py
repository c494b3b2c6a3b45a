"""Service configuration: one pydantic tree (extra keys rejected), a YAML file and env overrides."""

from crosspose.config.loading import ConfigError, config_from_dict, format_validation_error, load_config
from crosspose.config.settings import (
    DEFAULT_FPS,
    ApiConfig,
    BusConfig,
    CalibrationConfig,
    CameraConfig,
    Config,
    CurveConfig,
    InferenceConfig,
    LoggingConfig,
    OnnxRuntimeInference,
    SolverConfig,
    SupervisorConfig,
    SyncConfig,
    TorchInference,
    default_ipc_dir,
)

__all__ = [
    "DEFAULT_FPS",
    "ApiConfig",
    "BusConfig",
    "CalibrationConfig",
    "CameraConfig",
    "Config",
    "ConfigError",
    "CurveConfig",
    "InferenceConfig",
    "LoggingConfig",
    "OnnxRuntimeInference",
    "SolverConfig",
    "SupervisorConfig",
    "SyncConfig",
    "TorchInference",
    "config_from_dict",
    "default_ipc_dir",
    "format_validation_error",
    "load_config",
]
