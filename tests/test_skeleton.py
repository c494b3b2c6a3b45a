"""Joint layouts and their mapping into H36M-17: orders, derived joints, confidences, unsupported joints."""

from __future__ import annotations

import numpy as np
import pytest

from crosspose.skeleton import (
    BLAZEPOSE33,
    BODY25,
    BODY25B,
    COCO17,
    H36M17,
    JointRecipe,
    LayoutMapping,
    get_layout,
    head_size,
    joint_detection_rate,
    map_keypoints,
)

H = {name: i for i, name in enumerate(H36M17.joints)}


def test_h36m17_tree_and_mirror() -> None:
    assert H36M17.num_joints == 17
    assert H36M17.root == 0
    assert H36M17.joints[H36M17.mirror[H["l_wrist"]]] == "r_wrist"
    assert len(H36M17.bones) == 16


@pytest.mark.parametrize(
    ("layout", "count", "checks"),
    [
        (COCO17, 17, {0: "nose", 5: "left_shoulder", 11: "left_hip", 16: "right_ankle"}),
        (BODY25, 25, {1: "Neck", 8: "MidHip", 9: "RHip", 15: "REye", 24: "RHeel"}),
        # BODY_25B follows COCO for 0-16 (left first), then UpperNeck, HeadTop, feet.
        (BODY25B, 25, {1: "LEye", 5: "LShoulder", 11: "LHip", 12: "RHip", 17: "UpperNeck", 18: "HeadTop",
                       19: "LBigToe", 24: "RHeel"}),
        (BLAZEPOSE33, 33, {0: "nose", 7: "left_ear", 11: "left_shoulder", 23: "left_hip",
                           32: "right_foot_index"}),
    ],
)
def test_layouts_have_official_counts_and_order(layout, count: int, checks: dict[int, str]) -> None:
    assert layout.num_joints == count
    assert len(set(layout.joints)) == count
    for i, name in checks.items():
        assert layout.joints[i] == name
    for a, b in layout.bones:
        assert 0 <= a < count
        assert 0 <= b < count
        assert a != b


def test_layout_aliases() -> None:
    assert get_layout("openpose-body25b") is BODY25B
    assert get_layout("OpenPose_BODY_25") is BODY25
    assert get_layout("mediapipe") is BLAZEPOSE33
    assert get_layout("coco") is COCO17
    with pytest.raises(KeyError, match="unknown layout"):
        get_layout("body_99")


def _random_keypoints(layout, dims: int, batch: tuple[int, ...] = (2, 3)) -> np.ndarray:
    rng = np.random.default_rng(dims * 100 + layout.num_joints)
    coords = rng.normal(size=(*batch, layout.num_joints, dims))
    conf = rng.uniform(0.1, 1.0, size=(*batch, layout.num_joints, 1))
    return np.concatenate([coords, conf], axis=-1)


@pytest.mark.parametrize("dims", [2, 3])
def test_coco_mapping_direct_and_derived_joints(dims: int) -> None:
    kp = _random_keypoints(COCO17, dims)
    out = map_keypoints(kp, "coco17")
    assert out.shape == (2, 3, 17, dims + 1)
    c = {n: kp[..., i, :] for i, n in enumerate(COCO17.joints)}
    for h36m, coco in [("l_hip", "left_hip"), ("r_knee", "right_knee"), ("l_wrist", "left_wrist"),
                       ("r_shoulder", "right_shoulder"), ("neck", "nose")]:
        np.testing.assert_array_equal(out[..., H[h36m], :], c[coco])
    pelvis = 0.5 * (c["left_hip"] + c["right_hip"])
    thorax = 0.5 * (c["left_shoulder"] + c["right_shoulder"])
    np.testing.assert_allclose(out[..., H["pelvis"], :dims], pelvis[..., :dims], atol=1e-12)
    np.testing.assert_allclose(out[..., H["thorax"], :dims], thorax[..., :dims], atol=1e-12)
    np.testing.assert_allclose(out[..., H["spine"], :dims], 0.5 * (pelvis + thorax)[..., :dims], atol=1e-12)
    head = 0.5 * (c["left_eye"] + c["right_eye"])
    np.testing.assert_allclose(out[..., H["head"], :dims], head[..., :dims], atol=1e-12)
    # confidence of a derived joint = min of its sources
    hips_conf = np.minimum(c["left_hip"][..., -1], c["right_hip"][..., -1])
    np.testing.assert_array_equal(out[..., H["pelvis"], -1], hips_conf)
    corners = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")
    spine_conf = np.min([c[n][..., -1] for n in corners], axis=0)
    np.testing.assert_array_equal(out[..., H["spine"], -1], spine_conf)


def test_body25_uses_its_midhip_and_neck() -> None:
    kp = _random_keypoints(BODY25, 2)
    out = map_keypoints(kp, BODY25)
    np.testing.assert_array_equal(out[..., H["pelvis"], :], kp[..., BODY25.index("MidHip"), :])
    np.testing.assert_array_equal(out[..., H["thorax"], :], kp[..., BODY25.index("Neck"), :])
    mid = 0.5 * (kp[..., 8, :2] + kp[..., 1, :2])
    np.testing.assert_allclose(out[..., H["spine"], :2], mid, atol=1e-12)
    np.testing.assert_array_equal(out[..., H["r_hip"], :], kp[..., BODY25.index("RHip"), :])


def test_body25b_head_top_and_upper_neck() -> None:
    kp = _random_keypoints(BODY25B, 3)
    out = map_keypoints(kp, "body25b")
    np.testing.assert_array_equal(out[..., H["head"], :], kp[..., 18, :])
    np.testing.assert_array_equal(out[..., H["neck"], :], kp[..., 17, :])
    np.testing.assert_array_equal(out[..., H["l_hip"], :], kp[..., 11, :])  # not BODY_25's index 12
    np.testing.assert_array_equal(out[..., H["r_ankle"], :], kp[..., 16, :])
    assert LayoutMapping("body25b", allow_proxies=False).unsupported_joints == []


def test_blazepose_mapping() -> None:
    kp = _random_keypoints(BLAZEPOSE33, 3, batch=(4,))
    out = map_keypoints(kp, "blazepose33")
    np.testing.assert_array_equal(out[:, H["l_elbow"]], kp[:, BLAZEPOSE33.index("left_elbow")])
    np.testing.assert_allclose(out[:, H["head"], :3], 0.5 * (kp[:, 2, :3] + kp[:, 5, :3]), atol=1e-12)


@pytest.mark.parametrize("layout", ["coco17", "body25", "blazepose33"])
def test_proxies_can_be_marked_unsupported(layout: str) -> None:
    mapping = LayoutMapping(layout, allow_proxies=False)
    assert mapping.unsupported_joints == ["neck", "head"]
    out = mapping(_random_keypoints(get_layout(layout), 2))
    for name in ("neck", "head"):
        assert np.isnan(out[..., H[name], :2]).all()
        assert (out[..., H[name], 2] == 0).all()
    assert np.isfinite(out[..., H["pelvis"], :]).all()
    assert "unsupported" in mapping.describe()["head"]


def test_custom_recipe_without_a_joint_is_unsupported() -> None:
    recipes = {n: JointRecipe((n,), (1.0,)) for n in H36M17.joints if n != "spine"}
    mapping = LayoutMapping("h36m17", recipes=recipes)
    out = mapping(np.ones((5, 17, 4)))
    assert np.isnan(out[:, H["spine"], :3]).all()
    assert (out[:, H["spine"], 3] == 0).all()
    assert np.isfinite(out[:, H["head"]]).all()


def test_missed_source_zeroes_derived_joint_only() -> None:
    kp = _random_keypoints(COCO17, 2, batch=())
    kp[COCO17.index("left_hip")] = 0.0  # OpenPose-style miss: 0, 0, 0
    kp[COCO17.index("left_eye")] = np.nan  # a NaN source must not poison other joints
    out = map_keypoints(kp, "coco")
    for name in ("pelvis", "spine", "l_hip", "head"):
        assert out[H[name], 2] == 0
        assert np.isnan(out[H[name], :2]).all()
    others = [H[n] for n in ("r_hip", "thorax", "l_wrist", "neck")]
    assert np.isfinite(out[others]).all()
    assert (out[others, 2] > 0).all()


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3 or 4\)"):
        map_keypoints(np.zeros((3, 25, 3)), "coco17")
    with pytest.raises(ValueError, match="got \\(17, 5\\)"):
        map_keypoints(np.zeros((17, 5)), "coco17")


def test_head_size_and_jdr() -> None:
    truth = np.zeros((4, 17, 3))
    truth[:, H["head"], 2] = 0.2  # head size 0.2 m → threshold 0.1 m at fraction 0.5
    np.testing.assert_allclose(head_size(truth), 0.2)
    pred = truth.copy()
    pred[:2, H["l_wrist"], 0] += 0.05  # detected
    pred[2:, H["l_wrist"], 0] += 0.15  # missed
    pred[0, H["r_wrist"]] = np.nan  # missed
    rate = joint_detection_rate(pred, truth)
    assert rate[H["l_wrist"]] == 0.5
    assert rate[H["r_wrist"]] == 0.75
    assert rate[H["pelvis"]] == 1.0


# ---------------------------------------------------------------------------------------------------
# The full body (crosspose-body32)

BODY32_EXTREMITIES = ("l_heel", "l_big_toe", "r_heel", "r_big_toe", "l_index", "l_pinky", "l_thumb",
                      "r_index", "r_pinky", "r_thumb", "nose", "l_eye", "r_eye", "l_ear", "r_ear")


def test_body32_keeps_h36m17_first_then_the_issue_names_as_leaves() -> None:
    from crosspose.skeleton import BODY32, get_skeleton

    assert get_skeleton("crosspose-body32") is BODY32
    assert BODY32.joints == (*H36M17.joints, *BODY32_EXTREMITIES)
    assert BODY32.parents[:17] == H36M17.parents
    parent = {BODY32.joints[c]: BODY32.joints[p] for p, c in BODY32.bones}
    assert parent["l_heel"] == parent["l_big_toe"] == "l_ankle"
    assert {parent[f"r_{f}"] for f in ("index", "pinky", "thumb")} == {"r_wrist"}
    assert parent["nose"] == "neck"
    assert {parent[f] for f in ("l_eye", "r_eye", "l_ear", "r_ear")} == {"head"}
    assert all(not BODY32.children(BODY32.index(j)) for j in BODY32_EXTREMITIES)  # leaves
    assert BODY32.joints[BODY32.mirror[BODY32.index("l_big_toe")]] == "r_big_toe"
    assert all(0.03 < BODY32.template_lengths[BODY32.index(j)] < 0.2 for j in BODY32_EXTREMITIES)
    assert get_layout("body32").joints == BODY32.joints


def test_blazepose_gives_every_body32_joint_directly() -> None:
    mapping = LayoutMapping("blazepose33", dst="crosspose-body32")
    assert mapping.unsupported_joints == []
    kp = _random_keypoints(BLAZEPOSE33, 2)
    out = map_keypoints(kp, "blazepose33", dst="crosspose-body32")
    assert out.shape == (2, 3, 32, 3)
    for ours, theirs in (("l_heel", "left_heel"), ("r_big_toe", "right_foot_index"),
                         ("l_pinky", "left_pinky"),
                         ("r_thumb", "right_thumb"), ("nose", "nose"), ("r_ear", "right_ear")):
        np.testing.assert_array_equal(out[..., mapping.dst.index(ours), :],
                                      kp[..., BLAZEPOSE33.index(theirs), :])
    # the first 17 are exactly the H36M-17 mapping's
    np.testing.assert_array_equal(out[..., :17, :], map_keypoints(kp, "blazepose33"))


def test_openpose_body25b_has_no_hands_and_h36m17_no_extremities() -> None:
    out = map_keypoints(_random_keypoints(BODY25B, 2), "body25b", dst="crosspose-body32")
    hands = [17 + BODY32_EXTREMITIES.index(f"{s}_{f}") for s in "lr" for f in ("index", "pinky", "thumb")]
    assert np.isnan(out[..., hands, :2]).all()
    assert (out[..., hands, 2] == 0).all()
    heel = 17 + BODY32_EXTREMITIES.index("l_heel")
    assert np.isfinite(out[..., heel, :2]).all()
    from_h36m = LayoutMapping("h36m17", dst="crosspose-body32")
    assert from_h36m.unsupported_joints == list(BODY32_EXTREMITIES)
    with pytest.raises(ValueError, match="solver layout"):
        map_keypoints(_random_keypoints(BODY25B, 2), "body25b", dst="coco17")
