"""`fsd deploy [--var-file F]`, `fsd destroy`, `fsd outputs`: Terraform on AWS."""

from __future__ import annotations

import argparse

from .common import print_json


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    deploy = sub.add_parser("deploy", help="terraform apply the cloud side (AWS)",
                            description="Apply the Terraform root module; its outputs become "
                            "the deployment manifest runs use. Output is streamed to stderr.")
    deploy.add_argument("--var-file", metavar="F", help="Terraform variables file (.tfvars or "
                        ".tfvars.json): region, max_workers, package_s3_key, ...")
    deploy.set_defaults(handler=_deploy)
    destroy = sub.add_parser("destroy", help="terraform destroy the `fsd deploy` deployment")
    destroy.set_defaults(handler=_destroy)
    outputs = sub.add_parser("outputs", help="print the active deployment manifest (JSON)")
    outputs.set_defaults(handler=_outputs)


def _deploy(args: argparse.Namespace) -> int:
    from ..cloud import deploy_manifest_path
    from ..deploy import deploy

    manifest = deploy(var_file=args.var_file)
    print(f"deployed: {manifest.max_workers} worker slots in {manifest.region}; "
          f"manifest {deploy_manifest_path()}")
    return 0


def _destroy(args: argparse.Namespace) -> int:
    from ..deploy import destroy

    destroy()
    print("destroyed")
    return 0


def _outputs(args: argparse.Namespace) -> int:
    from ..cloud import Manifest, active_manifest_path
    from ..errors import InputError

    path = active_manifest_path()
    if not path.exists():
        raise InputError("no deployment: run `fsd deploy` (AWS) or `fsd local up`, "
                         "or set FSD_MANIFEST")
    print_json(Manifest.load(path).to_dict())
    return 0
