"""Run records in SQLite: one row per run, per worker and per worker-layer.

The database path comes from `FSD_RUNS_DB`, else `<data dir>/runs.sqlite` where the data dir
is `FSD_HOME` or `~/.local/share/fsd-inference`. The TUI's history and `fsd calibrate` read
the same store. JSON columns hold the maps (requests by API, categories, predictions).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InputError, RunError
from ..fileio import private_dir, private_file
from ..paths import data_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    model TEXT, inputs TEXT, variant TEXT NOT NULL, workers INTEGER NOT NULL,
    partition TEXT, branching INTEGER, batch INTEGER, neurons INTEGER, layers INTEGER,
    status TEXT NOT NULL, error TEXT,
    seconds REAL, edges_per_second REAL,
    bytes_sent INTEGER, messages INTEGER,
    requests TEXT, billed_requests TEXT, cost_usd REAL, predicted TEXT,
    categories TEXT, verified INTEGER, timings TEXT, extra TEXT
);
CREATE TABLE IF NOT EXISTS run_workers (
    run_id TEXT NOT NULL, worker INTEGER NOT NULL,
    requested_at REAL, started_at REAL, finished_at REAL, status TEXT, error TEXT,
    PRIMARY KEY (run_id, worker)
);
CREATE TABLE IF NOT EXISTS run_layers (
    run_id TEXT NOT NULL, worker INTEGER NOT NULL, layer INTEGER NOT NULL,
    compute_s REAL, wait_s REAL, bytes_sent INTEGER, bytes_received INTEGER,
    messages_sent INTEGER, messages_received INTEGER, requests TEXT, billed_requests TEXT,
    PRIMARY KEY (run_id, worker, layer)
);
"""

RUN_COLUMNS = frozenset((
    "run_id created model inputs variant workers partition branching batch neurons layers status error "
    "seconds edges_per_second bytes_sent messages requests billed_requests cost_usd predicted categories "
    "verified timings extra").split())
_JSON_COLUMNS = ("requests", "billed_requests", "predicted", "categories", "timings", "extra")


def default_db_path() -> Path:
    return Path(os.environ.get("FSD_RUNS_DB") or data_dir() / "runs.sqlite")


class RunStore:
    """The run history. Cheap to open; every call uses its own short transaction."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path else default_db_path()
        # The history names models, inputs and errors: this user's only (0600 in a directory
        # made 0700; SQLite gives its journal the database's mode).
        private_dir(self.path.parent, existing=False)
        private_file(self.path)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A transaction; a store SQLite cannot use is one line naming it: InputError for a
        file that is not a run store, RunError for one it cannot use now (locked, disk full)."""
        try:
            db = sqlite3.connect(self.path, timeout=30)
            db.row_factory = sqlite3.Row
            try:
                with db:
                    yield db
            finally:
                db.close()
        except sqlite3.OperationalError as exc:
            raise RunError(f"{self.path}: the run store cannot be used now ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a run store ({exc}); move it aside and runs start a new "
                             f"one (FSD_RUNS_DB names another)") from None

    def record(self, run: dict[str, Any], workers: list[dict[str, Any]] | None = None) -> None:
        """Insert or replace a run and its per-worker / per-layer rows."""
        row = {k: (json.dumps(v) if k in _JSON_COLUMNS and v is not None else v) for k, v in run.items()}
        row.setdefault("created", time.time())
        if isinstance(row.get("verified"), bool):
            row["verified"] = int(row["verified"])
        cols = [c for c in row if c in RUN_COLUMNS]
        with self._connect() as db:
            db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(cols)}) VALUES "
                       f"({', '.join('?' for _ in cols)})", [row[c] for c in cols])
            for w in workers or []:
                db.execute("INSERT OR REPLACE INTO run_workers VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (run["run_id"], w["worker"], w.get("requested_at"), w.get("started_at"),
                            w.get("finished_at"), w.get("status"), w.get("error")))
                db.executemany(
                    "INSERT OR REPLACE INTO run_layers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(run["run_id"], w["worker"], s["layer"], s["compute_s"], s["wait_s"], s["bytes_sent"],
                      s["bytes_received"], s["messages_sent"], s["messages_received"],
                      json.dumps(s.get("requests", {})), json.dumps(s.get("billed_requests", {})))
                     for s in w.get("layers", [])])

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run (a unique prefix of its id is enough), with its workers and layers."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs WHERE run_id LIKE ? ORDER BY created DESC",
                              (run_id + "%",)).fetchall()
            if len(rows) != 1:
                return None
            run = _decode(rows[0])
            run["workers_detail"] = [dict(r) for r in db.execute(
                "SELECT * FROM run_workers WHERE run_id = ? ORDER BY worker", (run["run_id"],))]
            run["layers_detail"] = [_decode(r) for r in db.execute(
                "SELECT * FROM run_layers WHERE run_id = ? ORDER BY worker, layer", (run["run_id"],))]
        return run

    def with_status(self, status: str) -> list[dict[str, Any]]:
        """The runs recorded with `status`, oldest first (without per-worker detail)."""
        with self._connect() as db:
            return [_decode(r) for r in db.execute(
                "SELECT * FROM runs WHERE status = ? ORDER BY created", (status,))]

    def mark(self, run_id: str, status: str, error: str | None, extra: dict[str, Any],
             was: str = "running") -> bool:
        """Set a run's status, error and extra if it is still `was` (nothing else of it
        changes); False if it is not."""
        with self._connect() as db:
            done = db.execute("UPDATE runs SET status = ?, error = ?, extra = ? WHERE run_id = ? AND status = ?",
                              (status, error, json.dumps(extra), run_id, was))
            return done.rowcount == 1

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent runs first (without per-worker detail)."""
        with self._connect() as db:
            return [_decode(r) for r in db.execute(
                "SELECT * FROM runs ORDER BY created DESC LIMIT ?", (limit,))]


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    for k in _JSON_COLUMNS:
        if isinstance(d.get(k), str):
            d[k] = json.loads(d[k])
    if "verified" in d and d["verified"] is not None:
        d["verified"] = bool(d["verified"])
    return d
