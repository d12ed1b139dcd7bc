"""Quitting the dashboard with a local run in flight on its warm pool: the run is stopped and
recorded interrupted, and nothing of the run or the pool stays in the scratch base (/dev/shm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsd_core.engine.pool import WorkerPool
from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.model.tsv import write_triples
from fsd_core.run.coordinator import RunConfig
from fsd_core.run.records import RunStore
from tests.test_tui import wait_for
from tui.app import FsdApp


@pytest.fixture(scope="module")
def query(tmp_path_factory):
    root = tmp_path_factory.mktemp("quit")
    model = radixnet(1024, 120, seed=0).save(root / "model")  # seconds of work on two workers
    write_triples(root / "inputs.tsv", synthetic_inputs(1024, 20000, seed=0))
    return str(model), str(root / "inputs.tsv")


@pytest.fixture
def scratch(shm_scratch):
    return shm_scratch


def leftovers(scratch: Path) -> list[str]:
    """What the scratch base holds beyond its two (empty) roots."""
    return sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")
                  if str(p.relative_to(scratch)) not in ("fsd-runs", "fsd-local-channel"))


@pytest.mark.slow
async def test_q_with_a_run_in_flight_stops_it_and_leaves_nothing(query, scratch, tmp_path):
    db = str(tmp_path / "runs.sqlite")
    with WorkerPool() as pool:
        app = FsdApp(runs_db=db, pool=pool)
        async with app.run_test(size=(120, 35)) as pilot:
            model, inputs = query
            app.launch(RunConfig(model, inputs, "local", 2, partition="block", runs_db=db))
            await wait_for(pilot, lambda: app.live.snap is not None and app.live.snap.phase == "running"
                           and min(app.live.snap.workers_done) >= 1, timeout=240, what="the run to be computing")
            assert any(p.name.startswith("fsd-pool-") for p in scratch.iterdir())
            run_id = app.live.snap.run_id
            await pilot.press("q")
        assert app.finish_run(60)
    (run,) = RunStore(db).list()
    assert run["run_id"] == run_id and run["status"] == "interrupted" and "dashboard quit" in run["error"]
    assert leftovers(scratch) == []


@pytest.mark.slow
async def test_fsd_cancel_of_the_dashboards_run_stops_that_run_and_not_the_dashboard(query, scratch, tmp_path):
    """`fsd cancel` in another process leaves the run's cancel marker and sends its coordinator
    (the dashboard) SIGTERM: the handler the dashboard's loop runs for SIGTERM stops that run."""
    import signal

    from fsd_core.fileio import atomic_write_text, private_dir
    from fsd_core.run.coordinator import cancel_marker

    db = str(tmp_path / "runs.sqlite")
    with WorkerPool() as pool:
        app = FsdApp(runs_db=db, pool=pool, quit_on_signals=True)
        async with app.run_test(size=(120, 35)) as pilot:
            model, inputs = query
            app.launch(RunConfig(model, inputs, "local", 2, partition="block", runs_db=db))
            await wait_for(pilot, lambda: app.live.snap is not None and app.live.snap.phase == "running"
                           and min(app.live.snap.workers_done) >= 1, timeout=240, what="the run to be computing")
            run_id = app.live.snap.run_id
            private_dir(cancel_marker(run_id).parent)
            atomic_write_text(cancel_marker(run_id), "cancel\n")  # what `fsd cancel` does, then SIGTERM
            app._quit_on_signal(signal.SIGTERM)
            await wait_for(pilot, lambda: app.run_ended.is_set(), timeout=60, what="the run to end")
            assert not app._quitting and app.return_code is None  # the dashboard stays
            cancel_marker(run_id).unlink(missing_ok=True)
        assert app.finish_run(60)
    (run,) = RunStore(db).list()
    assert run["run_id"] == run_id and run["status"] == "cancelled"
