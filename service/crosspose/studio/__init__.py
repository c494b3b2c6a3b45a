"""The synthetic studio: rigs, motion, ground truth, simulated heatmaps, rendered frames."""

from crosspose.studio.bvh import BvhError, load_bvh_motion
from crosspose.studio.heatmaps import (
    HeatmapError,
    HeatmapErrors,
    HeatmapTruth,
    apply_affine,
    crop_to_heatmap,
    heatmap_projection_matrices,
    image_to_heatmap,
    person_crops,
    simulate_heatmap_sequence,
    simulate_heatmaps,
)
from crosspose.studio.motion import Motion, Performer, generate_motion
from crosspose.studio.render import Renderer, render_to_video, render_views, studio_background
from crosspose.studio.rigs import IMAGE_SIZES, load_real_rig, random_rig
from crosspose.studio.scene import (
    Capsule,
    Scene,
    SceneFrame,
    Visibility,
    body_capsules,
    joint_visibility,
    make_scene,
    project_joints,
    scene_from_joints,
    self_occlusion,
)

__all__ = [
    "IMAGE_SIZES",
    "BvhError",
    "Capsule",
    "HeatmapError",
    "HeatmapErrors",
    "HeatmapTruth",
    "Motion",
    "Performer",
    "Renderer",
    "Scene",
    "SceneFrame",
    "Visibility",
    "apply_affine",
    "body_capsules",
    "crop_to_heatmap",
    "generate_motion",
    "heatmap_projection_matrices",
    "image_to_heatmap",
    "joint_visibility",
    "load_bvh_motion",
    "load_real_rig",
    "make_scene",
    "person_crops",
    "project_joints",
    "random_rig",
    "render_to_video",
    "render_views",
    "scene_from_joints",
    "self_occlusion",
    "simulate_heatmap_sequence",
    "simulate_heatmaps",
    "studio_background",
]
