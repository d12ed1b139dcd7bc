"""`fsd deploy [--var-file F]`, `fsd destroy`, `fsd outputs`: Terraform on AWS; `fsd package`:
the worker function's deployment zip."""

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


def _deploy(args: argparse.Namespace) -> int:
    from ..aws.manifest import deploy_manifest_path
    from ..aws.terraform import deploy

    manifest = deploy(var_file=args.var_file)
    print(f"deployed: {manifest.max_workers} worker slots in {manifest.region}; "
          f"manifest {deploy_manifest_path()}")
    return 0


def _destroy(args: argparse.Namespace) -> int:
    from ..aws.terraform import destroy

    destroy()
    print("destroyed")
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
        print(f"uploaded: s3://{manifest.bucket}/{info.key}")
        if info.function_updated:
            print(f"function {info.function_updated}: code updated")
        print(f"terraform: apply with -var package_s3_key={info.key} (or package_s3_key in "
              f"`fsd deploy --var-file`) so Terraform keeps this code")
    return 0
