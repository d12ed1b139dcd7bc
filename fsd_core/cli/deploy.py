"""`fsd deploy [--var-file F] [--backend-config ...] [--yes]`, `fsd destroy [--yes]`, `fsd outputs`:
Terraform on AWS, a plan shown and applied after confirmation; `fsd package`: the worker
function's deployment zip."""

from __future__ import annotations

import argparse

from .common import print_json


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    deploy = sub.add_parser(
        "deploy", help="plan the cloud side (Terraform), show the plan, apply it after confirmation",
        description="Deploy the Terraform root module (AWS, unless the var file sets `endpoint`): check the "
        "account (fsd doctor: credentials, region, Lambda concurrency), build the worker package for the "
        "configured architecture and runtime (only when its inputs changed; Terraform uploads it to the "
        "package bucket), run `terraform plan -out`, show what it adds, changes and destroys, ask "
        "`Apply? [y/N]`, then `terraform apply` of exactly that plan. Without a terminal on stdin pass "
        "--yes. The outputs become the deployment manifest runs use. Progress goes to stderr.")
    deploy.add_argument("--var-file", metavar="F", help="Terraform variables file (.tfvars or "
                        ".tfvars.json): region, max_workers, memory_mb, ...; naming package_file or "
                        "package_s3_key there deploys that package instead of building one")
    deploy.add_argument("--backend-config", metavar="KEY=VALUE|FILE", action="append",
                        help="passed to `terraform init -backend-config` (repeatable): keep the state in an "
                        "S3 backend (terraform/README.md, Remote state); remembered for destroy")
    deploy.add_argument("--wheel-dir", metavar="DIR",
                        help="build the worker package offline from the wheels in DIR (see fsd package)")
    deploy.add_argument("--yes", action="store_true",
                        help="apply the plan without asking (scripts; needed when stdin is not a terminal)")
    deploy.add_argument("--json", action="store_true",
                        help="print {status, plan, doctor, package, manifest, manifest_path} as JSON")
    deploy.set_defaults(handler=_deploy)
    destroy = sub.add_parser(
        "destroy", help="plan the destruction of the `fsd deploy` deployment, apply it after confirmation",
        description="`terraform plan -destroy -out` with the backend and variables of the last `fsd deploy`, "
        "list every resource that goes, ask `Destroy? [y/N]`, then apply exactly that plan. Without a terminal "
        "on stdin pass --yes.")
    destroy.add_argument("--yes", action="store_true",
                         help="destroy without asking (scripts; needed when stdin is not a terminal)")
    destroy.add_argument("--delete-packages", action="store_true",
                         help="once confirmed, delete every package version in the deployment's package bucket "
                         "first (Terraform keeps a package bucket that holds packages unless package_force_destroy)")
    destroy.add_argument("--json", action="store_true",
                         help="print {status, plan} as JSON (the keys of fsd deploy's document, the others null)")
    destroy.set_defaults(handler=_destroy)
    outputs = sub.add_parser("outputs", help="print the active deployment manifest (JSON)")
    outputs.set_defaults(handler=_outputs)
    package = sub.add_parser("package", help="build (and upload) the worker's Lambda deployment zip",
                             description="Build the Lambda zip: manylinux wheels of numpy, scipy and "
                             "zstandard for the target plus fsd_core; check Lambda's size limits. "
                             "Wheels are cached in ~/.cache/fsd-inference/wheels/<arch>-<python>/.")
    package.add_argument("--arch", default="arm64", metavar="ARCH",
                         help="x86_64 | arm64 (default arm64, as Terraform's `architecture`)")
    package.add_argument("--python", default="3.11", metavar="X.Y",
                         help="3.11 | 3.12 | 3.13: the function's runtime (default 3.11)")
    package.add_argument("--out", metavar="PATH",
                         help="zip to write (default dist/fsd-worker-<version>-<arch>-py<X.Y>.zip)")
    package.add_argument("--wheel-dir", metavar="DIR",
                         help="build offline from the wheels in DIR (no download)")
    package.add_argument("--upload", action="store_true",
                         help="put the zip under packages/ in the deployment bucket and update the "
                         "function's code if the deployment has one")
    package.add_argument("--manifest", metavar="FILE",
                         help="deployment manifest for --upload (default: the active deployment)")
    package.add_argument("--json", action="store_true", help="print the build summary as JSON")
    package.set_defaults(handler=_package)


def _require_confirmation(args: argparse.Namespace, command: str) -> None:
    """Refuse, before any work, a run that could neither ask nor was told --yes."""
    import sys

    from ..errors import InputError

    if not args.yes and not (sys.stdin is not None and sys.stdin.isatty()):
        raise InputError(f"fsd {command} applies changes only after confirmation and stdin is not a terminal: "
                         f"pass --yes to {command} without asking")


def _confirmer(args: argparse.Namespace, question: str):
    import sys

    def confirm(plan) -> bool:
        if args.yes:
            sys.stderr.write(f"{question} yes (--yes)\n")
            sys.stderr.flush()
            return True
        sys.stderr.write(f"{question} [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    return confirm


def _deploy(args: argparse.Namespace) -> int:
    from ..aws.terraform import deploy

    _require_confirmation(args, "deploy")
    result = deploy(var_file=args.var_file, backend_config=args.backend_config, wheel_dir=args.wheel_dir,
                    confirm=_confirmer(args, "Apply?"))
    if args.json:
        print_json(result.to_dict())
        return 0
    manifest = result.manifest
    plan = result.plan
    what = "no changes" if plan.empty else f"applied: {plan.add} added, {plan.change} changed, {plan.remove} destroyed"
    print(f"deployed ({what}): {manifest.max_workers} worker slots in {manifest.region}, function "
          f"{manifest.function_name or 'none'}; manifest {result.manifest_path}")
    if result.package_location:
        print(f"package: {result.package_location} ({'rebuilt' if result.package_rebuilt else 'unchanged'})")
    return 0


def _destroy(args: argparse.Namespace) -> int:
    from ..aws.terraform import destroy

    _require_confirmation(args, "destroy")
    result = destroy(confirm=_confirmer(args, "Destroy?"), delete_packages=args.delete_packages)
    if args.json:
        print_json(result.to_dict())
        return 0
    if result.status == "destroyed":
        print(f"destroyed: {result.plan.remove} resources")
    else:
        print("nothing to destroy")
    return 0


def _outputs(args: argparse.Namespace) -> int:
    from ..aws.manifest import Manifest, active_manifest_path
    from ..errors import InputError

    path = active_manifest_path()
    if not path.exists():
        raise InputError("no deployment: run `fsd deploy` (AWS) or `fsd local up`, "
                         "or set FSD_MANIFEST")
    print_json(Manifest.load(path).to_dict())
    return 0


def _package(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..aws.manifest import Manifest, active_manifest_path
    from ..aws.package import build_package, check_target, upload_package
    from ..errors import InputError
    from .common import check_output_file
    from .run import read_manifest_arg

    check_target(args.arch, args.python)
    check_output_file(args.out, "--out")
    manifest = None
    if args.upload:  # find the deployment before spending a minute on the build
        path = Path(args.manifest) if args.manifest else active_manifest_path()
        if not args.manifest and not path.exists():
            raise InputError("--upload: no deployment: run `fsd deploy` (AWS) or `fsd local up`, "
                             "or pass --manifest FILE")
        if args.manifest:
            manifest = Manifest.from_dict(read_manifest_arg(path), str(path))
        else:
            manifest = Manifest.load(path)
    elif args.manifest:
        raise InputError("--manifest is the deployment of --upload: add --upload")

    def progress(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    info = build_package(args.out, args.arch, args.python, args.wheel_dir, progress=progress)
    if manifest is not None:
        upload_package(info, manifest)
    if args.json:
        print_json(info.summary())
        return 0
    mb = 2**20
    print(f"built {info.path}: python{info.python} {info.arch}, {info.files} files, "
          f"{info.unzipped_bytes / mb:.1f} MB unzipped (Lambda limit 250 MB), "
          f"{info.zipped_bytes / mb:.1f} MB zipped; stripped {info.stripped_bytes / mb:.1f} MB")
    print(f"wheels ({info.wheel_source}): {', '.join(info.wheels)}")
    for note in info.notes:
        print(f"note: {note}")
    if info.key is not None:
        print(f"uploaded: s3://{getattr(manifest, 'package_bucket', None) or manifest.bucket}/{info.key}")
        if info.function_updated:
            print(f"function {info.function_updated}: code updated")
        print(f"terraform: apply with -var package_s3_key={info.key} (or package_s3_key in "
              f"`fsd deploy --var-file`) so Terraform keeps this code")
    return 0
