"""The resources a deployment manifest names (topic, queues, bucket, function) and their state."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from ..services import DeploymentStatus


class ResourceTable(DataTable):
    """kind, name, state: one row per resource."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)

    def on_mount(self) -> None:
        self.add_columns("kind", "name", "state")

    def show(self, status: DeploymentStatus | None) -> None:
        self.clear()
        rows = status.resources() if status else []
        for kind, name, state in rows:
            self.add_row(kind, name, state)
        if not rows:
            self.add_row("-", "no resources: no deployment", "")
