"""`fsd tui` in a real terminal: tmux runs it, we send keys and read the pane like a person."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FSD = Path(sys.executable).parent / "fsd"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Pane:
    """One detached tmux session running a command, 100x30.

    COLUMNS/LINES are unset in the pane: the test process may export them (80x24), and Textual
    (via shutil.get_terminal_size) would believe them over the real pane size.
    """

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.name = f"fsd-tui-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "100", "-y", "30", "-c", str(ROOT),
                        f"env -u COLUMNS -u LINES {exports} {command}"], check=True)

    def text(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return out.stdout

    def send(self, *keys: str) -> None:
        for key in keys:  # one at a time: tmux would glue "Escape 2" into alt+2
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.3)

    def wait_for(self, *needles: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if all(n in text for n in needles):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"pane never showed {needles!r}; it shows:\n{text}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def test_fsd_tui_in_tmux(isolated_home):
    env = {"FSD_HOME": str(isolated_home), "TERM": "xterm-256color", "PATH": os.environ.get("PATH", "")}
    pane = Pane(f"{shlex.quote(str(FSD))} tui", env)
    try:
        # the Runs screen opens first, keys in the footer (waiting also rides out tmux's first resize)
        first = pane.wait_for("Runs", "History", "Compare", "? Help")
        assert "1 Deployment" in first and "4 Runs" in first and "q Quit" in first and "palette" in first

        pane.send("1")
        deployment = pane.wait_for("local emulator: not running", "no deployment")
        assert "Start emulator" in deployment and "resources" in deployment

        pane.send("2")
        recommend = pane.wait_for("recommended: serial", "cost per query")
        for variant in ("serial", "queue", "object"):
            assert variant in recommend
        assert "workers P or A-B" in recommend and "$/query" in recommend

        pane.send("3")
        launch = pane.wait_for("Launch run", "models/tiny-inputs.tsv")
        assert "recommended for models/tiny: serial with 1 worker(s)" in launch

        pane.send("Escape", "?")
        pane.wait_for("fsd tui — keys", "palette: screens", "esc, q or ? closes")
        pane.send("Escape")
        pane.wait_for("Launch run")

        pane.send("4")
        pane.wait_for("Live", "History", "variant")

        pane.send("q")
        deadline = time.monotonic() + 10
        while pane.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pane.alive(), "the session is still running after q:\n" + pane.text()
    finally:
        pane.kill()


@pytest.mark.parametrize("how", ["q", "hangup"])
def test_fsd_tui_leaves_nothing_in_scratch_when_it_quits(isolated_home, tmp_path, how):
    """Its warm pool's directory and channel spares go, whether it is quit with q or its
    terminal closes (tmux kill-session: SIGHUP)."""
    scratch = Path("/dev/shm" if Path("/dev/shm").is_dir() else tmp_path) / f"fsd-test-tui-{uuid.uuid4().hex[:8]}"
    env = {"FSD_HOME": str(isolated_home), "FSD_SCRATCH": str(scratch), "TERM": "xterm-256color",
           "PATH": os.environ.get("PATH", "")}
    pane = Pane(f"{shlex.quote(str(FSD))} tui", env)
    try:
        pane.wait_for("Runs", "History", "? Help")
        assert any(p.name.startswith("fsd-pool-") for p in scratch.iterdir())
        assert any(p.name.startswith("spares-") for p in (scratch / "fsd-local-channel").iterdir())
        if how == "q":
            pane.send("q")
        else:
            pane.kill()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (pane.alive() or _left(scratch)):
            time.sleep(0.2)
        assert _left(scratch) == []
    finally:
        pane.kill()
        shutil.rmtree(scratch, ignore_errors=True)


def _left(scratch: Path) -> list[str]:
    return sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*") if p.name != "fsd-local-channel")
