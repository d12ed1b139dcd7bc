"""Thin calls into `fsd_core` for the dashboard: recommendation, deployment status, history.

Everything here blocks (files, SQLite, HTTP to the emulator) and is called from thread
workers. No cost, run or deployment logic lives here: it only picks the `fsd_core` call and
shapes its answer for display.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsd_core.run.coordinator import Progress

#: The shipped model and inputs: the default selection everywhere.
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
CHART_POINTS = 24  # worker counts sampled for the cost curve


def _shown(path: Path) -> str:
    """`path` relative to the working directory when inside it (shorter to read), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def default_model() -> str:
    """The shipped tiny model (models/tiny)."""
    return _shown(MODELS_DIR / "tiny")


def default_inputs() -> str:
    """The shipped tiny model's inputs (models/tiny-inputs.tsv)."""
    return _shown(MODELS_DIR / "tiny-inputs.tsv")


@dataclass(frozen=True)
class RecommendInputs:
    """What the Recommend form asks: a model directory or (neurons, layers), and a workload."""

    model: str | None = field(default_factory=default_model)
    neurons: int | None = None
    layers: int | None = None
    batch: int = 64
    workers: tuple[int, int] = (2, 64)
    queries_per_hour: float | None = None
    latency_target: float | None = None


@dataclass
class Recommendation:
    """`fsd recommend --json` plus the cost curve of queue and object over the worker range."""

    inputs: RecommendInputs
    doc: dict[str, Any]
    curve: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


def recommend(inputs: RecommendInputs) -> Recommendation:
    """Run the cost model as `fsd recommend` does; raises fsd_core's InputError on bad input."""
    from fsd_core.cost import model as cost

    if inputs.model:
        w = cost.workload_from_model(inputs.model, inputs.batch)
    else:
        if not inputs.neurons or not inputs.layers:
            from fsd_core.errors import InputError

            raise InputError("give a model directory, or both neurons and layers")
        w = cost.Workload.build(inputs.neurons, inputs.layers, inputs.batch, None, None)
    doc = cost.recommend(w, inputs.workers, latency_target=inputs.latency_target,
                         queries_per_hour=inputs.queries_per_hour)
    lo, hi = max(2, inputs.workers[0]), max(2, inputs.workers[1])
    curve = cost.cost_curve(w, lo, hi, CHART_POINTS, latency_target=inputs.latency_target)
    return Recommendation(inputs, doc, curve)


def same_model(a: str | None, b: str | None) -> bool:
    """Whether two model paths name the same directory (as typed, or resolved)."""
    if not a or not b:
        return False
    if a.strip() == b.strip():
        return True
    try:
        return Path(a.strip()).expanduser().resolve() == Path(b.strip()).expanduser().resolve()
    except (OSError, RuntimeError):
        return False


def described(inputs: RecommendInputs) -> str:
    """What a recommendation was made for: its model, or its size."""
    return inputs.model if inputs.model else f"N={inputs.neurons}, L={inputs.layers}"


# ------------------------------------------------------------------------------ runs
def run(config: Any, progress: Any) -> Any:
    """`coordinator.run` (as `fsd run`): returns its RunResult; raises InputError on bad input."""
    from fsd_core.run import coordinator

    return coordinator.run(config, progress)


def deployed_workers(name: str) -> int:
    """The workers P of the deployed model `name` (its shards are made for P); InputError if none."""
    from fsd_core.run.serving import find

    return find(name).workers


def cancel_run(run_id: str, runs_db: str | None = None) -> str:
    """Stop the run in flight (`fsd cancel`'s function); returns its recorded status."""
    from fsd_core.run.cancel import cancel
    from fsd_core.run.records import RunStore

    return cancel(run_id, wait=60.0, store=RunStore(runs_db))


def read_truth(path: str) -> Any:
    """A truth file's categories (as `fsd run --check` reads them); InputError names a bad line."""
    from fsd_core.model.tsv import read_categories

    return read_categories(path)


def truth_check(truth: Any, categories: Any) -> tuple[bool, str]:
    """(passed, what): the run's categories against the truth file's, as `fsd run --check` compares."""
    import numpy as np

    truth, categories = np.asarray(truth), np.asarray(categories)
    if len(truth) == len(categories) and bool(np.array_equal(truth, categories)):
        return True, f"{len(categories)} categories equal"
    missing = np.setdiff1d(truth, categories).size
    extra = np.setdiff1d(categories, truth).size
    return False, f"{len(categories)} categories, truth has {len(truth)} ({missing} missing, {extra} extra)"


def screenshot_dir() -> Path:
    """Where screenshots go: ~/Downloads when it exists, else `<data dir>/screenshots` (created)."""
    downloads = Path.home() / "Downloads"
    if downloads.is_dir():
        return downloads
    from fsd_core.paths import data_dir

    target = data_dir() / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


def snapshot(progress: Progress) -> Progress:
    """A private copy of a coordinator Progress (the coordinator keeps mutating its own)."""
    return Progress(progress.run_id, progress.phase, progress.layers, list(progress.workers_done),
                    copy.deepcopy(progress.reports))


# ------------------------------------------------------------------------------ deployment
@dataclass
class DeploymentStatus:
    """The emulator, the manifest in use and the resources it names."""

    available: bool  # False until fsd_core.aws exists
    running: bool = False
    endpoint: str | None = None
    pid: int | None = None
    data_dir: str | None = None
    manifest_source: str | None = None  # "local emulator", "fsd deploy", "$FSD_MANIFEST"
    manifest: dict[str, Any] | None = None
    error: str | None = None

    def resources(self) -> list[tuple[str, str, str]]:
        """(kind, name, state) for every resource the manifest names."""
        m = self.manifest
        if not m:
            return []
        if m.get("endpoint"):
            state = "live (emulator)" if self.running and m["endpoint"] == self.endpoint else "gone (emulator down)"
        else:
            state = "deployed (AWS)"
        rows = [("topic", arn.rsplit(":", 1)[-1], state) for arn in m.get("topic_arns") or []]
        rows += [("queue", url.rsplit("/", 1)[-1], state) for url in m.get("queue_urls") or []]
        if m.get("bucket"):
            rows.append(("bucket", m["bucket"], state))
        if m.get("function_name"):
            rows.append(("function", m["function_name"], state))
        return rows


def deployment_status() -> DeploymentStatus:
    """Read the emulator state and the active manifest (never starts anything)."""
    try:
        from fsd_core.aws import local_stack as cloud
        from fsd_core.aws import manifest as manifests
    except ImportError:
        return DeploymentStatus(available=False)
    from fsd_core.errors import FsdError
    from fsd_core.paths import data_dir

    status = DeploymentStatus(available=True, data_dir=str(data_dir()))
    try:
        local = cloud.local_status()
        status.running = bool(local.get("running"))
        status.endpoint, status.pid = local.get("endpoint"), local.get("pid")
        configured = manifests.configured_manifest_path()
        if configured is not None:
            status.manifest = manifests.Manifest.load(configured).to_dict()
            status.manifest_source = ("$FSD_MANIFEST" if configured != manifests.deploy_manifest_path()
                                      else "fsd deploy")
        elif local.get("deployment"):
            status.manifest, status.manifest_source = local["deployment"], "local emulator"
    except FsdError as exc:
        status.error = str(exc)
    return status


def cloud_run_refusal(variant: str, workers: int) -> str | None:
    """Why a queue or object run cannot start from the dashboard now, or None. The dashboard
    never provisions on its own (`fsd run` starts the local emulator when nothing else is
    configured: a minute and more of Terraform the dashboard could not show or cancel)."""
    if variant not in ("queue", "object"):
        return None
    status = deployment_status()
    if status.error:
        return f"deployment: {status.error}"
    if status.manifest is None:
        return (f"no deployment for a {variant} run: start the local emulator on the Deployment screen "
                f"(1, then s), or deploy to AWS (fsd deploy)")
    if status.manifest_source == "local emulator" and not status.running:
        return "the local emulator is not running: start it on the Deployment screen (1, then s)"
    slots = int(status.manifest.get("max_workers") or 0)
    if workers > slots:
        return (f"the deployment has {slots} worker slots, the run asks for {workers}: use fewer workers, or "
                f"provision more (fsd local up --workers {workers}, or max_workers for fsd deploy)")
    return None


def emulator_up(log: Any) -> None:
    """Start the local emulator and provision it (`fsd local up`); `log(line)` gets progress."""
    from fsd_core.aws import local_stack as cloud

    cloud.local_up(cloud.DEFAULT_LOCAL_WORKERS, progress=log)


def emulator_down() -> bool:
    """Stop the local emulator (`fsd local down`); True if one was running."""
    from fsd_core.aws import local_stack as cloud

    return cloud.local_down()


# ------------------------------------------------------------------------------ history
def history(limit: int = 200, runs_db: str | None = None) -> list[dict[str, Any]]:
    """The most recent runs of the run store."""
    from fsd_core.run.records import RunStore

    return RunStore(runs_db).list(limit)


def run_record(run_id: str, runs_db: str | None = None) -> dict[str, Any] | None:
    """One run with its per-worker and per-layer rows."""
    from fsd_core.run.records import RunStore

    return RunStore(runs_db).get(run_id)
