"""The Recommend and Launch screens' fields, driven by Pilot (issue 27): typing lands where the
operator types it, the recommendation shows everything `fsd recommend` prints (the EC2
comparison too) in readable units at 80x24, and Launch uses a recommendation only for the
model it was made for and offers the verify and truth checks of `fsd run`."""

from __future__ import annotations

import re

import pytest
from textual.widgets import Checkbox, Input, Select, Static

from fsd_core.kernel.serial import infer
from fsd_core.model.network import SparseDNN, read_inputs
from fsd_core.model.tsv import write_categories
from tests.test_tui import ROOT, region_text, screen_lines, text_of, wait_for, words
from tui.app import FsdApp
from tui.format import scale, usd
from tui.services import Recommendation, RecommendInputs
from tui.widgets.cost_chart import CostChart
from tui.widgets.cost_table import CostTable
from tui.widgets.recommend_form import DEBOUNCE_S, RecommendForm


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


async def focus_by_tab(pilot, app: FsdApp, widget_id: str) -> Input:
    """Leave any field, then Tab until `widget_id` has the focus (as an operator would)."""
    await pilot.press("escape")
    for _ in range(12):
        await pilot.press("tab")
        if app.focused is not None and app.focused.id == widget_id:
            return app.focused
    raise AssertionError(f"tab never reached #{widget_id}")


async def type_slowly(pilot, keys: str, gap: float = DEBOUNCE_S) -> None:
    """Keys 0.3 s apart: each lands just as the previous one's recomputation starts."""
    for key in keys:
        await pilot.pause(gap)
        await pilot.press(key)


async def recommended_for(pilot, app: FsdApp, **fields: str) -> None:
    """Fill Recommend fields and wait for the recommendation (or the error) of exactly those inputs."""
    form = app.screen.query_one(RecommendForm)
    for name, value in fields.items():
        form.set_value(name, value)
    wanted = form.parse()
    await wait_for(pilot, lambda: (app.recommendation is not None and app.recommendation.inputs == wanted)
                   or bool(app.recommendation_error), timeout=30, what="the recommendation")
    await pilot.pause(0.1)


def screen(app: FsdApp) -> str:
    return "\n".join(screen_lines(app))


# ------------------------------------------------------------------------------ fields
async def test_tab_into_a_field_keeps_its_text_and_puts_the_cursor_at_its_end():
    app = FsdApp(initial="launch")
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        for widget_id, typed in (("launch-workers", "5"), ("launch-model", "x")):
            field = await focus_by_tab(pilot, app, widget_id)
            before = field.value
            await pilot.press(typed)
            assert field.value == before + typed, (widget_id, field.value)
    app = FsdApp(initial="recommend")
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        field = await focus_by_tab(pilot, app, "rec-workers")
        await pilot.press("0")
        assert field.value == "2-640"


async def test_keys_typed_after_tab_or_ctrl_u_all_land():
    """Replayed as the operator sent them: Tab (or Ctrl+U), then keys 0.3 s apart."""
    app = FsdApp(initial="recommend")
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: app.recommendation is not None, what="the first recommendation")
        field = await focus_by_tab(pilot, app, "rec-workers")
        await pilot.press("ctrl+u")
        await type_slowly(pilot, "4-16")
        await pilot.press("tab")
        await type_slowly(pilot, "8")
        await wait_for(pilot, lambda: app.recommendation.inputs.workers == (4, 16), what="the new range")
        assert field.value == "4-16" and app.screen.query_one("#rec-batch", Input).value == "648"


async def test_a_recommendation_arriving_while_typing_does_not_overwrite_the_field():
    app = FsdApp(initial="launch")
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: app.recommendation is not None, what="the first recommendation")
        field = await focus_by_tab(pilot, app, "launch-workers")
        await pilot.press("ctrl+u")
        await type_slowly(pilot, "3")
        app.recommendation = canned(RecommendInputs(), "object", 8)  # lands between two keys
        await type_slowly(pilot, "2")
        assert field.value == "32"


async def test_clearing_the_model_clears_the_table_and_the_chart():
    app = FsdApp(initial="recommend")
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: app.recommendation is not None, what="the first recommendation")
        assert app.screen.query_one(CostTable).row_count == 3
        await recommended_for(pilot, app, model="")
        reason = text_of(app.screen.query_one("#rec-reason", Static))
        assert "give a model directory, or both neurons and layers" in reason
        assert app.screen.query_one(CostTable).row_count == 0
        chart = region_text(app, app.screen.query_one(CostChart))
        assert "queue" not in chart and "object" not in chart, chart


# ------------------------------------------------------------------------------ recommend
@pytest.mark.parametrize("size", [(80, 24), (120, 35)], ids=["80x24", "120x35"])
async def test_cost_per_day_shows_with_a_query_rate_and_a_latency_target(size):
    app = FsdApp(initial="recommend")
    async with app.run_test(size=size) as pilot:
        await recommended_for(pilot, app, qph="100", latency="2.5")
        day = app.recommendation.doc["sporadic"]["serverless_usd_per_day"]
        assert f"serverless {usd(day)}/day" in words(screen(app)), screen(app)


async def test_the_ec2_comparison_of_fsd_recommend_is_shown():
    app = FsdApp(initial="recommend")
    async with app.run_test(size=(120, 35)) as pilot:
        await recommended_for(pilot, app, qph="100")
        s = app.recommendation.doc["sporadic"]
        text = words(screen(app))
        assert s["server"]["instance"] in text and "always-on" in text and "job-scoped" in text, text
        assert f"always-on {usd(s['always_on_usd_per_day'])}/day" in text
        assert f"{s['break_even_queries_per_hour_vs_always_on']:,.0f} queries/hour" in text


async def test_the_chart_axis_uses_si_prefixes():
    app = FsdApp(initial="recommend")
    async with app.run_test(size=(120, 35)) as pilot:
        await recommended_for(pilot, app, workers="2-64")
        chart = region_text(app, app.screen.query_one(CostChart))
        assert not re.search(r"\d{4,}\.\d", chart), chart  # 231442.0 µ$ was the old axis
        _, prefix = scale(c for points in app.recommendation.curve.values() for _, c in points)
        assert prefix in ("m", "µ") and f"{prefix}$/query" in chart  # the costs run from µ$ to m$


async def test_why_not_is_readable_at_80x24():
    app = FsdApp(initial="recommend")
    async with app.run_test(size=(80, 24)) as pilot:
        await recommended_for(pilot, app, latency="2.5")
        table = app.screen.query_one(CostTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width, "the table is cut off"
        shown = words(region_text(app, app.screen.query_one("#rec-reason", Static)))
        infeasible = [r for r in app.recommendation.doc["rows"] if not r["feasible"]]
        assert infeasible
        for row in infeasible:
            assert row["why_not"] in shown, shown


# ------------------------------------------------------------------------------ launch
def canned(inputs: RecommendInputs, variant: str, workers: int) -> Recommendation:
    doc = {"recommended": variant, "workers": workers, "memory_mb": 1769,
           "reason": f"{variant} with {workers} worker(s) at 1769 MB costs $0.0001 per query",
           "rows": [], "crossover_workers": None, "crossover": {"workers": None}}
    return Recommendation(inputs, doc, {})


async def test_launch_uses_a_recommendation_only_for_its_model():
    app = FsdApp(initial="launch")
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: app.recommendation is not None, what="the first recommendation")
        form = app.screen
        variant, workers = form.query_one("#launch-variant", Select), form.query_one("#launch-workers", Input)
        variant.value, workers.value = "local", "2"
        await pilot.pause()
        for inputs in (RecommendInputs(model=None, neurons=1024, layers=120),
                       RecommendInputs(model="models/other")):
            app.recommendation = canned(inputs, "object", 8)
            await pilot.pause()
            assert (variant.value, workers.value) == ("local", "2"), inputs
            assert "not for this model" in text_of(form.query_one("#launch-hint", Static))


async def test_a_recommendation_for_the_model_fills_the_fields_the_operator_left():
    app = FsdApp(initial="launch")
    async with app.run_test(size=(120, 35)) as pilot:
        await wait_for(pilot, lambda: app.recommendation is not None, what="the first recommendation")
        form = app.screen
        variant, workers = form.query_one("#launch-variant", Select), form.query_one("#launch-workers", Input)
        app.recommendation = canned(RecommendInputs(model=str(ROOT / "models/tiny")), "object", 8)
        await pilot.pause()
        assert (variant.value, workers.value) == ("object", "8")
        assert text_of(form.query_one("#launch-hint", Static)).startswith(f"recommended for {ROOT}/models/tiny: object")
        variant.value = "local"  # the operator's choice, even the variant the form started with
        await pilot.pause()
        app.recommendation = canned(RecommendInputs(), "queue", 16)
        await pilot.pause()
        assert (variant.value, workers.value) == ("local", "16")


async def test_launch_verifies_and_checks_the_truth(tmp_path, isolated_home):
    model = SparseDNN.load(ROOT / "models/tiny")
    truth = tmp_path / "truth.tsv"
    write_categories(truth, infer(model, read_inputs(ROOT / "models/tiny-inputs.tsv", model.neurons)).categories)
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("1\n2\n")
    app = FsdApp(initial="launch")
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        for path, verdict in ((truth, "PASSED"), (wrong, "FAILED")):
            app.switch_mode("launch")
            await pilot.pause()
            launch = app.screen
            launch.query_one("#launch-variant", Select).value = "serial"
            launch.query_one("#launch-verify", Checkbox).value = True
            launch.query_one("#launch-truth", Input).value = str(path)
            await pilot.pause()
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda path=path: app.live is not None and app.live.finished
                           and app.live.truth_path == str(path), timeout=60, what="the run")
            await pilot.pause()
            assert app.live.result.verified is True
            log = "\n".join(app.live.log)
            assert "verified: equal to the serial kernel" in log and f"truth check ({path}): {verdict}" in log
            figures = text_of(app.screen.query_one("#monitor-figures", Static))
            assert f"truth {verdict}" in figures and "verified" in figures, figures


async def test_launch_queries_a_deployed_model_staging_only_its_inputs(isolated_home):
    from fsd_core.run.serving import deploy_model

    deploy_model(SparseDNN.load(ROOT / "models/tiny"), str(ROOT / "models/tiny"), 2, "local", "block", None, 0,
                 None, name="tiny-served")
    app = FsdApp(initial="launch")
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        launch = app.screen
        launch.query_one("#launch-deployed", Input).value = "no-such-model"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "no deployed model" in text_of(launch.query_one("#launch-error", Static))
        assert app.live is None
        launch.query_one("#launch-deployed", Input).value = "tiny-served"
        launch.query_one("#launch-variant", Select).value = "local"
        launch.query_one("#launch-verify", Checkbox).value = True
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.live is not None and app.live.finished, timeout=60, what="the run")
        result = app.live.result
        assert result is not None, "\n".join(app.live.log)
        assert result.status == "ok" and result.verified and result.deployed == "tiny-served"
        assert result.workers == 2 and 0 < result.staged_bytes
        assert "deployed model tiny-served" in "\n".join(app.live.log)
