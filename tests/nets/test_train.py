"""``crosspose model train-fusion``: a tiny run is reproducible by seed, lowers the loss and writes
weights the exported network loads; the real-clip pseudo-labels never come from an evaluated frame (≥ 60)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from crosspose.cli.model import app
from crosspose.evaluation import real_clip
from crosspose.nets.fusion import CrossViewFusion
from crosspose.nets.train import (
    EVALUATED_FROM,
    RealClip,
    TrainConfig,
    gaussian_maps,
    pseudo_labels,
    real_examples,
    single_source_joints,
    train_fusion,
)
from crosspose.skeleton import H36M17

TINY = dict(steps=10, scenes=2, frames=2, validation_scenes=1, learning_rate=0.05, cameras=(2, 3))


def test_tiny_run_is_deterministic_and_lowers_the_loss() -> None:
    first = train_fusion(TrainConfig(seed=3, **TINY), progress=False)  # type: ignore[arg-type]
    second = train_fusion(TrainConfig(seed=3, **TINY), progress=False)  # type: ignore[arg-type]
    assert first.losses == second.losses
    for (name, a), (_, b) in zip(first.fusion.state_dict().items(), second.fusion.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    other = train_fusion(TrainConfig(seed=4, **TINY), progress=False)  # type: ignore[arg-type]
    assert other.losses != first.losses
    validation = first.log["validation_loss"]
    assert validation["after"] < validation["before"]
    mixing = torch.stack([first.fusion.own, first.fusion.cross, first.fusion.agree]).detach()
    assert (mixing >= 0).all()
    assert (mixing.sum(0) <= 1 + 1e-6).all()  # fused maps stay in [0, 1] without clipping
    assert first.log["data"]["real"] is None
    assert set(first.sources) == {"synthetic"}


def _clip(frames: np.ndarray) -> RealClip:
    """A 4-view clip of made-up frames whose heatmaps peak where the 3D joints project (view 3 swaps
    its wrists), in the layout :func:`real_clip` caches."""
    from crosspose.studio import heatmap_projection_matrices, make_scene, person_crops, random_rig

    n = len(frames)
    rig = random_rig(5, 4, distortion=0.0)
    scene = make_scene(5, n, 4, rig=rig)
    crops = np.stack([person_crops(scene.joints2d[f], (64, 64)) for f in range(n)])
    P = heatmap_projection_matrices(np.asarray(rig.projection_matrices())[None], crops).astype(np.float32)
    joints = np.asarray(scene.joints3d)
    X = np.concatenate([joints, np.ones((*joints.shape[:2], 1))], -1)
    uvw = np.einsum("ncab,njb->ncja", P.astype(np.float64), X)
    xy = uvw[..., :2] / uvw[..., 2:3]
    lw, rw = H36M17.index("l_wrist"), H36M17.index("r_wrist")
    xy[:, 3, [lw, rw]] = xy[:, 3, [rw, lw]]
    return RealClip(frames=frames, heatmaps=gaussian_maps(xy), projections=P, valid=np.ones((n, 4), bool),
                    root=joints[:, H36M17.root].astype(np.float32), joints=joints)


def test_pseudo_labels_keep_agreeing_joints_in_every_view() -> None:
    clip = _clip(np.arange(3))
    frames, xy, keep = pseudo_labels(clip)
    assert frames.tolist() == [0, 1, 2]
    allowed = single_source_joints()
    assert not keep[..., ~allowed].any()  # derived joints (pelvis, spine, …) are never labelled
    lw = H36M17.index("l_wrist")
    # Three views agree on the wrist: it is a target in all four, the swapped view included.
    assert keep[:, :, lw].all()
    assert np.isfinite(xy[keep]).all()
    examples, summary = real_examples(clip)
    assert all(max(e.frames) < EVALUATED_FROM for e in examples)
    assert summary["frames"] == [0, 2]
    assert summary["kept"] == int(keep.sum())
    # With a second view swapped, only two agree: not kept.
    _, _, keep2 = pseudo_labels(_swap_view(clip, 2))
    assert not keep2[:, :, lw].any()
    assert keep2[:, :, H36M17.index("l_knee")].all()


def _swap_view(clip: RealClip, view: int) -> RealClip:
    heatmaps = clip.heatmaps.copy()
    lw, rw = H36M17.index("l_wrist"), H36M17.index("r_wrist")
    heatmaps[:, view, [lw, rw]] = heatmaps[:, view, [rw, lw]]
    return RealClip(clip.frames, heatmaps, clip.projections, clip.valid, clip.root, clip.joints)


def test_evaluated_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="evaluated frames"):
        pseudo_labels(_clip(np.array([58, 59, 60])))
    with pytest.raises(ValueError, match="frames 0…59 only"):
        real_clip(frames=61)


@pytest.mark.network
def test_real_clip_pseudo_labels_use_only_training_frames() -> None:
    """The real clip through the frozen backbone and the solver (3 frames, not cached)."""
    clip = real_clip(frames=3, progress=False, cache=False)
    frames, _, keep = pseudo_labels(clip)
    assert frames.tolist() == [0, 1, 2]
    assert clip.heatmaps.shape == (3, 4, 17, 64, 64)
    assert keep.any()


def test_command_writes_weights_that_the_network_loads(tmp_path: Path) -> None:
    out = tmp_path / "fusion_weights.pt"
    result = CliRunner().invoke(app, ["train-fusion", "--steps", "4", "--scenes", "1", "--frames", "2",
                                      "--no-real", "--no-progress", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert 0 < out.stat().st_size < 16_000
    log = json.loads((tmp_path / "fusion_training.json").read_text())
    assert log["config"]["seed"] == 1
    assert len(log["losses"]) == 4
    assert log["weights_sha256"]
    assert "git_commit" in log
    state = torch.load(out, map_location="cpu", weights_only=True)
    fusion = CrossViewFusion()
    fusion.load_state_dict(state)  # the layer build_fusion_network makes takes it as is
    assert torch.equal(fusion.own, state["own"])
    if log["plot"] is not None:
        assert (tmp_path / "fusion_training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.network
def test_build_fusion_network_loads_trained_weights(tmp_path: Path) -> None:
    fusion = CrossViewFusion()
    with torch.no_grad():
        fusion.own.fill_(0.25)
    path = tmp_path / "w.pt"
    torch.save(fusion.state_dict(), path)
    from crosspose.nets.export import build_fusion_network

    network = build_fusion_network(fusion_weights=path)
    assert network.fusion_weights == path
    assert torch.equal(network.fusion.own, torch.full((17,), 0.25))
    assert build_fusion_network(untrained=True).fusion_weights is None
