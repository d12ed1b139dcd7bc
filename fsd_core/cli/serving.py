"""`fsd model deploy | deployed | undeploy`: a model's shards stored once, queried many times
(`fsd run --deployed NAME`). The work is in `run.serving`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..units import si
from .common import MAX_WORKERS, int_range, print_json, say
from .progress import Display


def register_actions(msub: argparse._SubParsersAction) -> None:
    """The serving actions of `fsd model`."""
    from ..plan.partition import METHODS  # light: numpy/scipy only

    p = msub.add_parser("deploy", help="store a model's shards once, for queries that stage only inputs",
                        description="Plan (cached) and split the model into the workers' shards, and "
                        "store them once under a content-addressed id (model and plan fingerprints): in "
                        "the deployment bucket for queue and object, in the data directory for local. "
                        "A second deploy of the same model and plan writes nothing. Query it with "
                        "`fsd run --deployed NAME`.")
    p.add_argument("--model", required=True, type=Path, metavar="MODEL", help="model directory")
    p.add_argument("--workers", required=True, type=int_range(1, MAX_WORKERS, " (the largest deployment)"),
                   help="number of workers P the shards are made for")
    p.add_argument("--variant", choices=("local", "queue", "object"), default="local",
                   help="where queries will run: local (shards in the data directory) or queue/object "
                   "(shards in the deployment bucket; both share them). Default local")
    p.add_argument("--partition", metavar="METHOD", choices=METHODS,
                   help="block, random, metis or hypergraph (default hypergraph, or metis when mtkahypar "
                   "does not import)")
    p.add_argument("--name", help="the name queries use (default <model directory>-p<P>-<method>)")
    p.add_argument("--manifest", type=Path, metavar="FILE",
                   help="deployment manifest JSON (queue/object; default: the active one, else the local "
                   "emulator, started on demand)")
    p.add_argument("--json", action="store_true", help="print the deployment as one JSON document")
    p.set_defaults(handler=cmd_deploy)

    p = msub.add_parser("deployed", help="list the deployed models (name, store, plan, size)")
    p.add_argument("--json", action="store_true", help="print the list as one JSON document")
    p.set_defaults(handler=cmd_deployed)

    p = msub.add_parser("undeploy", help="forget a deployed model and delete its shards",
                        description="Removes the name; its shards are deleted unless another name uses them.")
    p.add_argument("name", metavar="NAME", help="the deployed model's name (fsd model deployed)")
    p.add_argument("--manifest", type=Path, metavar="FILE",
                   help="deployment manifest JSON (queue/object; default: the active one or the local emulator)")
    p.add_argument("--json", action="store_true", help="print what was removed as one JSON document")
    p.set_defaults(handler=cmd_undeploy)


def _manifest_for(store_variant: str, workers: int, path: Path | None, display: Display) -> dict | None:
    """The deployment a cloud store lives in (none for the local store)."""
    if store_variant == "local":
        return None
    from .progress import local_deployment
    from .run import read_manifest_arg

    manifest = read_manifest_arg(path)
    if manifest is not None:
        from ..run.cleanup import resolve_manifest

        return resolve_manifest(manifest, workers, store_variant)
    return local_deployment(workers, store_variant, display)


def cmd_deploy(args: argparse.Namespace) -> int:
    from ..model.network import SparseDNN
    from ..plan.partition import check_available, default_method
    from ..run.serving import deploy_model
    from .progress import emulator_notice, emulator_running

    cloud = args.variant != "local" and args.manifest is None
    was_running = emulator_running() if cloud else True
    with Display(live=None) as display:
        try:
            display.phase(f"loading {args.model}")
            model = SparseDNN.load(args.model)
            if not 1 <= args.workers <= model.neurons:
                from ..errors import InputError

                raise InputError(f"--workers must be between 1 and {model.neurons}, got {args.workers}")
            method = check_available(args.partition) if args.partition else default_method(notice=display.say)
            manifest = _manifest_for(args.variant, args.workers, args.manifest, display)
            outcome = deploy_model(model, str(args.model), args.workers, args.variant, method, None, 0, manifest,
                                   name=args.name, progress=display.phase)
        finally:
            notice = emulator_notice(was_running, emulator_running()) if cloud else None
            display.stop()
            if notice:
                say(notice)
    doc = outcome.summary()
    if args.json:
        print_json(doc)
        return 0
    d = outcome.deployment
    where = "the deployment bucket" if d.store == "s3" else "the data directory"
    if outcome.already_deployed:
        print(f"model {d.name}: already deployed in {where} (models/{d.id}); nothing uploaded")
    else:
        print(f"model {d.name}: deployed in {where} (models/{d.id}): {d.workers} shards, "
              f"{si(outcome.staged_bytes, 'B')} in {outcome.seconds:.1f} s")
    cost = outcome.cost()
    keep = (f", then ${cost.storage_usd_per_month:.6f} a month to keep {si(cost.stored_bytes, 'B')}"
            if cost.storage_usd_per_month is not None else "")
    print(f"  cost       ${cost.usd:.7f} one-time ({', '.join(f'{api} {n:,}' for api, n in sorted(cost.requests.items()))}, "
          f"{si(cost.bytes, 'B')} written){keep}; priced as S3 in {cost.region}")
    print(f"  query it:  fsd run --deployed {d.name} --inputs FILE --variant "
          f"{'local' if d.store == 'directory' else 'queue|object'} --workers {d.workers}")
    return 0


def cmd_deployed(args: argparse.Namespace) -> int:
    from ..run.serving import deployed

    models = deployed()
    if args.json:
        print_json({"deployed": [d.to_dict() for d in models]})
        return 0
    if not models:
        say("no deployed models (fsd model deploy --model MODEL --workers P)")
        return 0
    from ..units import table

    rows = [[d.name, "local" if d.store == "directory" else "queue/object", f"{d.neurons}x{d.layers}",
             str(d.workers), d.method, si(d.size, "B"), time.strftime("%Y-%m-%d %H:%M", time.localtime(d.deployed_at)),
             d.bucket or ("data directory" if d.store == "directory" else "?")]
            for d in models]
    print(table(["name", "variants", "model", "workers", "partition", "size", "deployed", "where"], rows))
    return 0


def cmd_undeploy(args: argparse.Namespace) -> int:
    from ..run.serving import find, undeploy

    deployment = find(args.name)
    manifest, delete = _holding_deployment(deployment, args.manifest) if deployment.store == "s3" else (None, True)
    removed = undeploy(args.name, manifest, delete=delete)
    if args.json:
        print_json({"name": removed.name, "id": removed.id, "size_bytes": removed.size, "status": "undeployed",
                    "deleted": delete})
    else:
        print(f"model {removed.name}: undeployed (models/{removed.id}, {si(removed.size, 'B')}"
              + ("" if delete else "; nothing to delete") + ")")
    return 0


def _holding_deployment(deployment, path: Path | None) -> tuple[dict | None, bool]:
    """The deployment to delete a cloud store from (its recorded bucket at the endpoint at
    hand), and whether there is anything to delete: an emulator that stopped took the store
    with it. Never starts an emulator or provisions anything to delete from it."""
    from ..aws.emulator import endpoint_listens
    from ..aws.manifest import configured_manifest_path
    from ..errors import InputError
    from ..run.gc_cloud import deployment as current
    from .progress import emulator_running

    gone = f"model {deployment.name}: the local emulator that held it has stopped; its shards went with it"
    legacy = deployment.bucket is None  # (recorded before records named their bucket: whichever is at hand)
    if (deployment.endpoint is not None and not endpoint_listens(deployment.endpoint)) or \
            (legacy and path is None and configured_manifest_path() is None and not emulator_running()):
        say(gone)
        return None, False
    manifest, why = current(path)
    if manifest is None:
        raise InputError(f"model {deployment.name} is in {deployment.where}: {why}; pass that deployment's "
                         f"--manifest to delete its shards")
    if deployment.bucket is None:
        return manifest.to_dict(), True
    if manifest.endpoint == deployment.endpoint:  # the same account or emulator: its recorded bucket
        return dict(manifest.to_dict(), bucket=deployment.bucket), True
    if deployment.endpoint is not None and manifest.endpoint is not None:
        say(gone)  # (one emulator at a time: another endpoint is a restarted one)
        return None, False
    raise InputError(f"model {deployment.name} is in {deployment.where}, the deployment at hand is "
                     f"{'at ' + manifest.endpoint if manifest.endpoint else 'on AWS'}: pass the holding "
                     f"deployment's --manifest")
