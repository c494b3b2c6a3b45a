"""The supervisor with real spawn processes: order, restart with backoff, clean stop, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from crosspose.runtime.supervisor import StageSpec, Supervisor
from crosspose.runtime.testing import crashing_stage, idle_stage, slow_teardown_stage, stubborn_stage

pytestmark = pytest.mark.timeout(90)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_for(cond, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_starts_in_order_and_stops_every_stage(tmp_path: Path) -> None:
    files = [tmp_path / "a.pid", tmp_path / "b.pid"]
    sup = Supervisor([StageSpec("a", idle_stage, (str(files[0]),), ready=files[0].exists),
                      StageSpec("b", idle_stage, (str(files[1]),), ready=files[1].exists)])
    sup.start()
    try:
        # "b" starts only once "a" is ready: a's pid file exists before b's.
        assert wait_for(lambda: all(f.exists() for f in files))
        assert files[0].stat().st_mtime_ns <= files[1].stat().st_mtime_ns
        pids = [int(f.read_text()) for f in files]
        assert all(alive(p) for p in pids)
        assert sup.pids() == {"a": pids[0], "b": pids[1]}
    finally:
        sup.stop()
    assert not any(alive(p) for p in pids)


def test_crashed_stage_is_restarted_with_backoff(tmp_path: Path) -> None:
    count = tmp_path / "starts"
    restarts: list[tuple[str, int | None, int]] = []
    sup = Supervisor([StageSpec("crashy", crashing_stage, (0.2, str(count)))], backoff_s=0.2,
                     backoff_max_s=0.4, on_restart=lambda *a: restarts.append(a))
    sup.start()
    try:
        assert wait_for(lambda: (sup.poll(), count.exists() and len(count.read_text().split()) >= 3)[1])
        assert sup.restarts()["crashy"] >= 2
    finally:
        sup.stop()
    assert len(restarts) >= 2
    assert restarts[0][0] == "crashy"
    assert restarts[0][1] == 3  # the exit code of the crash
    pids = [int(p) for p in count.read_text().split()]
    assert len(set(pids)) == len(pids)  # a new process each time
    assert not any(alive(p) for p in pids)


class _Reports:
    """A status reporter that keeps what it is sent (the service's publishes ``status.supervisor.``)."""

    interval_s = 0.05

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed = False

    def send(self, status: dict[str, Any]) -> None:
        self.sent.append(status)

    def close(self) -> None:
        self.closed = True


def test_a_crash_loop_is_reported_with_the_restarts(tmp_path: Path) -> None:
    """Restarts used to reach the log only: the supervisor now reports them (and crash loops) to the
    API, which turns them into readiness reasons and metrics."""
    count = tmp_path / "starts"
    reports = _Reports()
    sup = Supervisor([StageSpec("crashy", crashing_stage, (0.1, str(count))),
                      StageSpec("steady", idle_stage)], backoff_s=0.1, backoff_max_s=0.2, reporter=reports,
                     crash_loop_exits=3)  # fmt: skip
    thread = threading.Thread(target=sup.run, kwargs={"install_signals": False, "poll_s": 0.02}, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: any(r["stages"]["crashy"]["crash_looping"] for r in reports.sent[-5:]), 60)
    finally:
        sup.request_stop()
        thread.join(30)
    looping = next(r for r in reports.sent if r["stages"]["crashy"]["crash_looping"])["stages"]
    assert looping["crashy"]["consecutive_exits"] >= 3
    assert looping["crashy"]["restarts"] >= 3
    assert looping["crashy"]["last_exit_code"] == 3
    assert (looping["steady"]["restarts"], looping["steady"]["crash_looping"]) == (0, False)
    assert looping["steady"]["running"] is True
    waiting = [r["stages"]["crashy"] for r in reports.sent if not r["stages"]["crashy"]["running"]]
    assert waiting
    assert all(w["restart_in_s"] is not None and w["pid"] is None for w in waiting)
    assert reports.closed


def test_stage_that_ignores_stop_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "s.pid"
    sup = Supervisor([StageSpec("stubborn", stubborn_stage, (str(pid_file),), ready=pid_file.exists)],
                     stop_timeout_s=0.5)
    sup.start()
    try:
        assert wait_for(pid_file.exists)
        pid = int(pid_file.read_text())
    finally:
        sup.stop()  # also when the test fails: a stage that ignores SIGTERM would keep pytest from exiting
    assert not alive(pid)


def test_a_finished_stage_exits_without_the_interpreter_teardown(tmp_path: Path) -> None:
    pid_file = tmp_path / "t.pid"
    sup = Supervisor([StageSpec("slow", slow_teardown_stage, (str(pid_file), 30.0), ready=pid_file.exists)],
                     stop_timeout_s=3.0)
    sup.start()
    assert wait_for(pid_file.exists)
    process = sup._running["slow"].process
    t0 = time.monotonic()
    sup.stop()
    # Exited by itself with code 0 long before its 30 s exit hook (not terminated at the 3 s timeout).
    assert time.monotonic() - t0 < 2.5
    assert process.exitcode == 0
    assert not alive(int(pid_file.read_text()))


SCRIPT = textwrap.dedent("""
    import sys
    from crosspose.runtime.supervisor import StageSpec, Supervisor
    from crosspose.runtime.testing import idle_stage
    d = sys.argv[1]
    Supervisor([StageSpec(n, idle_stage, (f"{d}/{n}.pid",)) for n in ("x", "y")]).run()
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_supervisor_signal_leaves_no_orphans(tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)])
    try:
        files = [tmp_path / "x.pid", tmp_path / "y.pid"]
        assert wait_for(lambda: all(f.exists() and f.read_text() for f in files))
        pids = [int(f.read_text()) for f in files]
        assert all(alive(p) for p in pids)
        proc.send_signal(sig)
        proc.wait(timeout=20)
        if sig != signal.SIGKILL:
            assert proc.returncode == 0
        # Children exit with the supervisor, even when it was killed outright (PR_SET_PDEATHSIG).
        assert wait_for(lambda: not any(alive(p) for p in pids), 10)
    finally:
        if proc.poll() is None:
            proc.kill()


PID1_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from crosspose.runtime.supervisor import StageSpec, Supervisor
    from crosspose.runtime.testing import idle_stage
    d = sys.argv[1]
    sup = Supervisor([StageSpec("x", idle_stage, (f"{d}/x.pid",))], backoff_s=0.1)
    sup.start()
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        sup.poll()
        time.sleep(0.05)
    print(json.dumps({"pid": os.getpid(), "restarts": sup.restarts()["x"],
                      "stage_alive": sup._running["x"].process.is_alive()}))
    sup.stop()
""")


def test_stages_run_under_a_supervisor_that_is_pid_1(tmp_path: Path) -> None:
    """In a container without an init the supervisor is PID 1; its stages must not take that parent
    for "the supervisor died" (they returned at once and were restarted forever)."""
    import json
    import shutil

    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run([unshare, "--user", "--map-root-user", "--pid", "--fork", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"new PID namespaces are not allowed here: {probe.stderr.decode().strip()}")
    out = subprocess.run(
        [unshare, "--user", "--map-root-user", "--pid", "--fork", "--mount-proc",
         sys.executable, "-c", PID1_SCRIPT, str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["pid"] == 1
    assert result["restarts"] == 0
    assert result["stage_alive"]


CTRL_C_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from crosspose.runtime.supervisor import StageSpec, Supervisor
    from slow_import_stage import stage
    Supervisor([StageSpec("slow", stage, (f"{sys.argv[1]}/slow.pid",))]).run()
""")


def test_ctrl_c_while_a_stage_is_still_importing_stops_cleanly(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group, children included; a child still importing its stage
    used to die of it with a KeyboardInterrupt traceback."""
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, str(tmp_path), str(Path(__file__).parent)],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        def child() -> int | None:
            try:
                kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            except OSError:
                return None
            return int(kids[0]) if kids else None

        assert wait_for(lambda: child() is not None)
        time.sleep(0.5)  # the child is in its 3 s import
        assert not (tmp_path / "slow.pid").exists()
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-2000:]
    assert "KeyboardInterrupt" not in err, err[-2000:]
    assert "did not stop" not in err
