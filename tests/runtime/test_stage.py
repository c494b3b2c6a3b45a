"""What the stages share: the warnings a stage logs while a problem repeats at the frame rate."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from crosspose.bus import Message
from crosspose.bus.schema import FRAMESET


def _bad_frameset(camera: str, seq: int) -> Message:
    return Message(FRAMESET, {"v": 1, "type": "frameset", "seq": seq, "cameras": [camera]}, [])


def test_alternating_problems_of_the_inference_stage_are_rate_limited_like_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two bad frame sets taking turns at 60 fps used to get a line each (the de-duplication compared a
    problem with the previous one only): ~5 lines/s for ever."""
    from crosspose.runtime.demo import synthetic_config
    from crosspose.runtime.inference_stage import InferenceStage

    stage = InferenceStage(synthetic_config(tmp_path, "127.0.0.1", 0, cameras=2, render=False))
    try:
        with caplog.at_level(logging.WARNING, logger="crosspose.runtime.inference_stage"):
            for seq in range(120):  # two seconds of two problems alternating
                assert stage._process(_bad_frameset("intruder-a" if seq % 2 else "intruder-b", seq)) is None
    finally:
        stage.close()
    lines = [r for r in caplog.records if r.name == "crosspose.runtime.inference_stage"]
    assert len(lines) == 2, [r.getMessage() for r in lines]  # once per problem, then quiet for 10 s
    assert stage.errors == 120
    assert "intruder-b" in str(stage.last_error) or "intruder-a" in str(stage.last_error)


def test_warning_limiter_counts_what_it_held_back_and_caps_a_burst_of_distinct_problems(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from crosspose.runtime.stage import WarningLimiter

    log = logging.getLogger("test.limiter")
    limiter = WarningLimiter(log, interval_s=10.0, burst=3)
    with caplog.at_level(logging.WARNING, logger="test.limiter"):
        logged = [limiter.warn(f"problem {i % 7}", now=i * 0.01) for i in range(700)]  # 7 problems, 7 s
        assert sum(logged) == 3  # the burst: garbage failing seven ways still gets 3 lines per 10 s
        assert limiter.warn("problem 5", now=10.5)  # a new window: one that was held back gets out
    assert "697 more warnings held back" in caplog.records[-1].getMessage()
    assert not limiter.warn("problem 5", now=11.0)  # and is quiet again for 10 s
