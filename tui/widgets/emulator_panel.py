"""The local emulator's status line and the manifest in use."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..services import DeploymentStatus


class EmulatorPanel(Static):
    """Running or not, where, and which manifest runs of the queue/object variants will use."""

    DEFAULT_CSS = """
    EmulatorPanel { height: auto; padding: 0 1; }
    """

    def show(self, status: DeploymentStatus | None) -> None:
        text = Text()
        if status is None:
            text.append("reading deployment status…", style="dim")
        elif not status.available:
            text.append("no deployment: fsd_core.aws is not available in this installation", style="dim")
        else:
            text.append("local emulator: ", style="bold")
            if status.running:
                text.append("running", style="bold green")
                text.append(f" at {status.endpoint} (pid {status.pid})")
            else:
                text.append("not running", style="bold yellow")
                text.append("  (s: start it and provision the resources)", style="dim")
            text.append("\nmanifest: ", style="bold")
            if status.manifest:
                m = status.manifest
                text.append(f"{status.manifest_source}: region {m.get('region')}, "
                            f"endpoint {m.get('endpoint') or 'AWS'}, {m.get('max_workers')} worker slots")
            else:
                text.append("no deployment", style="bold yellow")
                text.append("  (the local variant needs none; queue/object start the emulator on demand)",
                            style="dim")
            text.append(f"\ndata dir: {status.data_dir}", style="dim")
            if status.error:
                text.append(f"\nerror: {status.error}", style="bold red")
        self.update(text)
