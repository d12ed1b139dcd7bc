"""The Live view's cancel key: x, then y, stops the run in flight (a real local run of this
process), which is recorded cancelled; n leaves it running; with no run in flight x says so."""

from __future__ import annotations

import pytest

from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.model.tsv import write_triples
from fsd_core.run.coordinator import RunConfig
from fsd_core.run.records import RunStore
from tests.test_tui import wait_for
from tui.app import FsdApp
from tui.screens.confirm import ConfirmScreen


@pytest.fixture(scope="module")
def long_query(tmp_path_factory):
    root = tmp_path_factory.mktemp("cancel")
    model = radixnet(4096, 120, seed=0).save(root / "model")  # a query of tens of seconds here
    write_triples(root / "inputs.tsv", synthetic_inputs(4096, 20000, seed=0))
    return str(model), str(root / "inputs.tsv")


@pytest.mark.slow
async def test_x_then_y_cancels_the_run_in_flight(long_query, tmp_path, monkeypatch):
    monkeypatch.setenv("FSD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FSD_SCRATCH", str(tmp_path / "scratch"))
    db = str(tmp_path / "runs.sqlite")
    app = FsdApp(runs_db=db)
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.press("4")  # Runs
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)  # nothing in flight: a notice, no question
        model, inputs = long_query
        app.launch(RunConfig(model, inputs, "local", 2, partition="block", runs_db=db))
        await wait_for(pilot, lambda: app.live.snap is not None and app.live.snap.phase == "running"
                       and min(app.live.snap.workers_done) >= 1, timeout=240, what="the run to be computing")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("n")
        await pilot.pause()
        assert not app.live.finished  # n: still running
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.live.finished, timeout=60, what="the run to stop")
        assert app.live.result is not None and app.live.result.status == "cancelled"
        run_id = app.live.result.run_id
    assert RunStore(db).get(run_id)["status"] == "cancelled"
    assert not (tmp_path / "scratch" / "fsd-runs" / run_id).exists()


async def test_the_deployment_screens_stop_asks_first(tmp_path, monkeypatch):
    """x on the Deployment screen stops the emulator only after a yes (no emulator runs here:
    the stop then says it was not running)."""
    from textual.widgets import RichLog

    monkeypatch.setenv("FSD_HOME", str(tmp_path / "home"))
    app = FsdApp(runs_db=str(tmp_path / "runs.sqlite"))
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.press("1")  # Deployment
        log = app.screen.query_one(RichLog)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "Stop the local emulator?" in str(app.screen.question) and "deployed in it go" in app.screen.question
        await pilot.press("n")
        await pilot.pause(0.5)
        assert not isinstance(app.screen, ConfirmScreen)
        assert not any("emulator" in str(line.text) for line in log.lines)  # nothing stopped
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: any("local emulator was not running" in str(line.text) for line in log.lines),
                       what="the stop's outcome in the log")


async def test_a_cloud_run_without_a_deployment_is_refused_not_provisioned(tmp_path, monkeypatch):
    """The dashboard never starts the emulator and Terraform on its own for a queue or object
    run: it says where to start one, and nothing is launched or left running."""
    from fsd_core.aws.emulator import emulator_state

    monkeypatch.setenv("FSD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FSD_MANIFEST", raising=False)
    app = FsdApp(runs_db=str(tmp_path / "runs.sqlite"))
    async with app.run_test(size=(120, 35)) as pilot:
        for variant in ("queue", "object"):
            assert not app.launch(RunConfig("models/tiny", "models/tiny-inputs.tsv", variant, 2))
            await pilot.pause()
            (note,) = [n for n in app._notifications if variant in n.message]
            assert note.message.startswith(f"no deployment for a {variant} run: start the local emulator on the "
                                           "Deployment screen (1, then s)") and note.severity == "error"
        assert app.live is None and emulator_state() is None
