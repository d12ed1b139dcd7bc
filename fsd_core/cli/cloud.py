"""`fsd local up | down | status`: the local AWS emulator and its Terraform-provisioned resources."""

from __future__ import annotations

import argparse

from .common import MAX_WORKERS, int_range, print_json
from .progress import Display


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    local = sub.add_parser("local", help="the local AWS emulator and its resources",
                           description="Start/stop moto's server on a loopback port and "
                           "provision the Terraform root module against it.")
    verbs = local.add_subparsers(dest="verb", metavar="VERB", required=True)
    up = verbs.add_parser("up", help="start the emulator and apply Terraform against it")
    up.add_argument("--workers", type=int_range(1, MAX_WORKERS, " (Terraform's max_workers)"), default=None,
                    help=f"worker slots (SQS queues) to provision, 1..{MAX_WORKERS} (default 8)")
    up.add_argument("--json", action="store_true", help="print the manifest as JSON")
    up.set_defaults(handler=_up)
    down = verbs.add_parser("down", help="stop the emulator (its resources go with it)")
    down.set_defaults(handler=_down)
    status = verbs.add_parser("status", help="is the emulator running, and what is deployed")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=_status)


def _up(args: argparse.Namespace) -> int:
    import time

    from ..aws.local_stack import DEFAULT_LOCAL_WORKERS, local_up
    from ..aws.manifest import local_manifest_path
    from .progress import local_progress

    start = time.monotonic()
    with Display() as display:
        display.phase("local AWS deployment: checking")
        manifest = local_up(args.workers or DEFAULT_LOCAL_WORKERS, progress=local_progress(display))
    if args.json:
        print_json(manifest.to_dict())
    else:
        print(f"local deployment ready in {time.monotonic() - start:.0f} s: {manifest.endpoint}, "
              f"{manifest.max_workers} worker slots, bucket {manifest.bucket}")
        print(f"manifest: {local_manifest_path()}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from ..aws.local_stack import local_down

    print("local emulator stopped" if local_down() else "local emulator was not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..aws.local_stack import local_status

    status = local_status()
    if args.json:
        print_json(status)
    elif not status["running"]:
        print(f"local emulator: not running (state: {status['state_dir']})")
    else:
        print(f"local emulator: running at {status['endpoint']} (pid {status['pid']}, "
              f"up {status['uptime_s']:.0f} s)")
        deployment = status["deployment"]
        if deployment:
            print(f"deployment: {deployment['max_workers']} worker slots, "
                  f"{len(deployment['topic_arns'])} topic(s), bucket {deployment['bucket']}, "
                  f"function {deployment['function_name']}; manifest {status['manifest']}")
        else:
            print("deployment: none (fsd local up)")
    return 0
