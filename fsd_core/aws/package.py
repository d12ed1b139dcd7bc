"""`fsd package`: the Lambda deployment zip of the worker function, and its upload.

The zip holds, at its root, the manylinux wheels of the worker's runtime dependencies for the
function's architecture and Python version (unpacked: Lambda puts the zip root on sys.path),
plus the `fsd_core` sources the handler needs. The worker's third-party imports are numpy,
scipy, xxhash and zstandard (test_package checks this against the handler's real module graph);
boto3/botocore come with Lambda's Python runtime, and the client-only packages (textual,
moto, pymetis, mtkahypar, python-terraform) never load in a worker, so none of them ships.

Wheels come from `pip download --only-binary=:all: --platform ... --python-version X.Y
--implementation cp` and are cached per target in `$FSD_WHEEL_CACHE` or
`$XDG_CACHE_HOME/fsd-inference/wheels/<arch>-<python>/` (~/.cache/...): a build first tries the
cache offline, then the package index. `--wheel-dir DIR` builds from pre-downloaded wheels only.

Lambda's limits: 250 MB unzipped (function + layers; refused above it) and 50 MB zipped for
a direct upload; larger zips must go through S3, which is what `--upload` and Terraform's
`package_file` do anyway.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InputError, RunError
from ..fileio import atomic_path, atomic_write_text

#: Lambda's limit on the unzipped function code (bytes; "250 MB" = 250 MiB of quota).
LAMBDA_MAX_UNZIPPED = 262_144_000
#: Lambda's limit on a zip uploaded directly (ZipFile parameter); S3 uploads may be larger.
LAMBDA_MAX_DIRECT_ZIP = 52_428_800
#: Lambda architecture name -> wheel platform machine.
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
#: Lambda Python runtimes -> glibc minor version of their OS (2.26: Amazon Linux 2 for
#: python3.11; 2.34: Amazon Linux 2023 for python3.12/3.13). Wheels built for a newer glibc
#: would not load there.
PYTHONS = {"3.11": 26, "3.12": 34, "3.13": 34}
DEFAULT_ARCH = "arm64"     # Terraform's `architecture` default (cheaper per GB-second)
DEFAULT_PYTHON = "3.11"    # Terraform's `runtime` default (python3.11)
#: What the worker imports beyond the standard library and fsd_core (see the module doc).
WORKER_DISTRIBUTIONS = ("numpy", "scipy", "xxhash", "zstandard")
#: Fallback requirement specifiers if fsd-inference's metadata is not installed.
_FALLBACK_REQUIREMENTS = ("numpy>=1.26", "scipy>=1.11", "xxhash>=3.4", "zstandard>=0.22")
#: Parts of fsd_core only the client uses (argument parsing, Terraform, this builder).
CLIENT_ONLY = ("cli", "aws/terraform.py", "aws/package.py", "aws/emulator.py", "aws/local_stack.py",
               "aws/doctor.py")
#: Never needed at run time: byte code, type stubs, Cython declarations (and tests: `_kept`).
_STRIP_SUFFIXES = (".pyc", ".pyo", ".pyi", ".pxd")
#: zstandard's cffi backend (12 MB) loads only with the cffi package, which does not ship;
#: the C backend next to it is what zstandard imports first.
_STRIP_PATTERNS = (re.compile(r"^zstandard/_cffi\..*\.so$"),)
#: Network failures in pip's output (as opposed to "no such wheel"), most specific first.
_NETWORK_ERRORS = ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                   "Network is unreachable", "No route to host", "timed out", "ProxyError", "SSLError",
                   "NewConnectionError", "Max retries exceeded")
#: Where a package's build description sits inside the zip.
INFO_NAME = "fsd-package.json"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # reproducible zips: same inputs, same bytes


class IndexUnreachable(InputError):
    """pip could not reach the package index (and the cache could not satisfy the build)."""


@dataclass
class PackageInfo:
    """What a build produced; `summary()` is the `fsd package --json` document."""

    path: str
    arch: str
    python: str
    fsd_version: str
    wheels: list[str]
    files: int
    unzipped_bytes: int
    zipped_bytes: int
    stripped_bytes: int
    wheel_source: str = ""
    key: str | None = None
    function_updated: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- targets

def check_target(arch: str, python: str) -> None:
    """InputError unless (arch, python) is a Lambda target we can build for."""
    if arch not in ARCHITECTURES:
        raise InputError(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if python not in PYTHONS:
        raise InputError(f"unsupported --python {python!r}; choose one of {', '.join(PYTHONS)}")


def platforms(arch: str, python: str) -> list[str]:
    """pip --platform tags the runtime's glibc accepts: manylinux2014 up to its glibc."""
    machine = ARCHITECTURES[arch]
    tags = [f"manylinux2014_{machine}"]
    tags += [f"manylinux_2_{minor}_{machine}" for minor in range(17, PYTHONS[python] + 1)]
    return tags


def fsd_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("fsd-inference")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def worker_requirements() -> list[str]:
    """Requirement specifiers of the worker's dependencies, as pinned in pyproject.toml."""
    from importlib import metadata

    try:
        declared = metadata.requires("fsd-inference") or []
    except metadata.PackageNotFoundError:
        return list(_FALLBACK_REQUIREMENTS)
    picked = []
    for req in declared:
        if ";" in req:
            continue  # extras and markers: not a plain runtime dependency
        name = re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0].strip().lower()
        if name in WORKER_DISTRIBUTIONS:
            picked.append(req.replace(" ", ""))
    names = {re.split(r"[<>=!~]", r, maxsplit=1)[0] for r in picked}
    picked += [r for r in _FALLBACK_REQUIREMENTS if re.split(r"[<>=!~]", r, maxsplit=1)[0] not in names]
    return sorted(picked)


def wheel_cache_dir(arch: str, python: str) -> Path:
    """The wheel cache of one target (`$FSD_WHEEL_CACHE` replaces the cache root)."""
    root = os.environ.get("FSD_WHEEL_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "fsd-inference" / "wheels"
    return base / f"{arch}-{python}"


def default_output(arch: str, python: str) -> Path:
    return Path("dist") / f"fsd-worker-{fsd_version()}-{arch}-py{python}.zip"


def package_key(arch: str, python: str) -> str:
    """Bucket key of an uploaded package (the Python version is part of it: one zip per runtime)."""
    return f"packages/fsd-worker-{fsd_version()}-{arch}-py{python}.zip"


# --------------------------------------------------------------------------- wheels

def _pip(args: list[str], isolated: bool) -> tuple[int, str]:
    """Run pip of this interpreter; isolated = ignore every pip config file and PIP_* variable."""
    if importlib.util.find_spec("pip") is None:
        raise RunError(f"pip is not available for {sys.executable}: python -m ensurepip")
    env = dict(os.environ)
    argv = [sys.executable, "-m", "pip"]
    if isolated:
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        argv.append("--isolated")
    argv += args
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def _missing(output: str) -> str | None:
    """The requirement pip could not satisfy, from its error output."""
    m = (re.search(r"Could not find a version that satisfies the requirement (\S+)", output)
         or re.search(r"No matching distribution found for (\S+)", output))
    return m.group(1) if m else None


def _network_error(output: str) -> str | None:
    """A short reason ("Connection refused at pypi.org") if pip failed to reach an index."""
    for marker in _NETWORK_ERRORS:
        if marker in output:
            host = re.search(r"host='([^']+)'", output)
            return marker + (f" at {host.group(1)}" if host else "")
    return None


def _download_args(arch: str, python: str, dest: Path) -> list[str]:
    args = ["download", "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
            "--dest", str(dest), "--no-input", "--disable-pip-version-check", "--progress-bar", "off"]
    for tag in platforms(arch, python):
        args += ["--platform", tag]
    return args + worker_requirements()


def _target(arch: str, python: str) -> str:
    return f"CPython {python} on manylinux {ARCHITECTURES[arch]} (glibc <= 2.{PYTHONS[python]})"


@contextmanager
def resolved_wheels(arch: str, python: str, wheel_dir: str | os.PathLike[str] | None = None,
                    progress: Callable[[str], None] | None = None) -> Iterator[tuple[list[Path], str]]:
    """Yield (the wheel files of one consistent dependency set, where they came from).

    With `wheel_dir`: only that directory (offline). Else the target's cache (offline), then
    the package index through the user's pip configuration, saving new wheels in the cache.
    """
    check_target(arch, python)
    say = progress or (lambda _line: None)
    with tempfile.TemporaryDirectory(prefix="fsd-wheels-") as tmp:
        dest = Path(tmp)
        if wheel_dir is not None:
            source = Path(wheel_dir).expanduser()
            if not source.is_dir():
                raise InputError(f"--wheel-dir {wheel_dir}: no such directory")
            code, out = _pip(_download_args(arch, python, dest) + ["--no-index", "--find-links", str(source)],
                             isolated=True)
            if code != 0:
                what = _missing(out) or "the worker's dependencies"
                raise InputError(f"--wheel-dir {wheel_dir} has no wheel of {what} for {_target(arch, python)} "
                                 f"(needs {', '.join(worker_requirements())})")
            yield sorted(dest.glob("*.whl")), str(source)
            return
        cache = wheel_cache_dir(arch, python)
        if cache.is_dir():
            code, _ = _pip(_download_args(arch, python, dest) + ["--no-index", "--find-links", str(cache)],
                           isolated=True)
            if code == 0:
                say(f"wheels from the cache {cache}")
                yield sorted(dest.glob("*.whl")), str(cache)
                return
            for partial in dest.glob("*"):
                partial.unlink()
        say(f"downloading wheels for {_target(arch, python)} (pip download) ...")
        code, out = _pip(_download_args(arch, python, dest) + ["--retries", "2"], isolated=False)
        if code != 0:
            network = _network_error(out)
            if network:
                raise IndexUnreachable(f"cannot download wheels: the package index is unreachable "
                                       f"({network}); download {', '.join(WORKER_DISTRIBUTIONS)} "
                                       f"wheels for {_target(arch, python)} elsewhere and pass --wheel-dir DIR")
            what = _missing(out)
            if what:
                raise InputError(f"the package index has no wheel of {what} for {_target(arch, python)}")
            tail = [line for line in out.splitlines() if line.strip()]
            raise RunError(f"pip download failed: {tail[-1] if tail else 'no output'}")
        wheels = sorted(dest.glob("*.whl"))
        cache.mkdir(parents=True, exist_ok=True)
        for wheel in wheels:
            if not (cache / wheel.name).exists():
                with atomic_path(cache / wheel.name) as part:
                    shutil.copyfile(wheel, part)
        yield wheels, "package index"


# --------------------------------------------------------------------------- the zip

def _kept(name: str) -> bool:
    """False for wheel members a worker never needs (tests, byte code, stubs, RECORD, ...)."""
    parts = PurePosixPath(name).parts
    if "__pycache__" in parts or name.endswith(_STRIP_SUFFIXES):
        return False
    if "tests" in parts[:-1]:
        # Test modules and their data go; helper modules stay: library code imports some
        # (numpy.testing imports numpy._core.tests._natype).
        base = parts[-1]
        return base.endswith(".py") and not base.startswith("test") and base != "conftest.py"
    if any(pattern.match(name) for pattern in _STRIP_PATTERNS):
        return False
    return not (len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "RECORD")


def _wheel_destination(name: str) -> str | None:
    """Where a wheel member goes in the zip root (purelib/platlib data unfold; scripts etc. drop)."""
    parts = PurePosixPath(name).parts
    if parts and parts[0].endswith(".data"):
        if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
            return "/".join(parts[2:])
        return None
    return name


def fsd_core_sources() -> list[tuple[Path, str]]:
    """(file, name in the zip) of every fsd_core module a worker may import."""
    root = Path(__file__).resolve().parent.parent  # fsd_core/
    picked = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or rel.as_posix().startswith(CLIENT_ONLY):
            continue
        picked.append((path, f"fsd_core/{rel.as_posix()}"))
    return picked


def _member(name: str, executable: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
    return info


def check_limits(unzipped: int, zipped: int) -> list[str]:
    """InputError over Lambda's unzipped limit; notes (e.g. "upload through S3") otherwise."""
    if unzipped > LAMBDA_MAX_UNZIPPED:
        raise InputError(f"package is {_mb(unzipped)} unzipped ({_mb(zipped)} zipped), over Lambda's "
                         f"{_mb(LAMBDA_MAX_UNZIPPED)} limit on unzipped code")
    notes = []
    if zipped > LAMBDA_MAX_DIRECT_ZIP:
        notes.append(f"{_mb(zipped)} zipped is over the {_mb(LAMBDA_MAX_DIRECT_ZIP)} direct-upload limit: "
                     f"deploy it through S3 (fsd package --upload, or Terraform's package_file)")
    return notes


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def build_package(out: str | os.PathLike[str] | None = None, arch: str = DEFAULT_ARCH,
                  python: str = DEFAULT_PYTHON, wheel_dir: str | os.PathLike[str] | None = None,
                  progress: Callable[[str], None] | None = None) -> PackageInfo:
    """Build the deployment zip at `out` (written to a temp file, renamed when complete)."""
    check_target(arch, python)
    target = Path(out) if out is not None else default_output(arch, python)
    with resolved_wheels(arch, python, wheel_dir, progress) as (wheels, source):
        seen: dict[str, str] = {}
        unzipped = stripped = 0
        with atomic_path(target) as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for wheel in wheels:
                    with zipfile.ZipFile(wheel) as whl:
                        for member in whl.infolist():
                            dest = _wheel_destination(member.filename)
                            if member.is_dir() or dest is None:
                                continue
                            if not _kept(dest):
                                stripped += member.file_size
                                continue
                            if dest in seen:
                                raise RunError(f"{wheel.name} and {seen[dest]} both contain {dest}")
                            seen[dest] = wheel.name
                            unzipped += member.file_size
                            executable = bool((member.external_attr >> 16) & 0o111) or ".so" in dest
                            with whl.open(member) as src, archive.open(_member(dest, executable), "w") as dst:
                                shutil.copyfileobj(src, dst, 1 << 20)
                for path, name in fsd_core_sources():
                    data = path.read_bytes()
                    unzipped += len(data)
                    archive.writestr(_member(name), data)
                info = {"fsd_version": fsd_version(), "arch": arch, "python": python,
                        "wheels": [w.name for w in wheels], "handler": "fsd_core.engine.handler.handler"}
                text = json.dumps(info, indent=1).encode()
                unzipped += len(text)
                archive.writestr(_member(INFO_NAME), text)
                files = len(archive.infolist())
            tmp.chmod(0o644)  # mkstemp made it private; the zip is nothing secret
            zipped = tmp.stat().st_size
            notes = check_limits(unzipped, zipped)  # raising here leaves no zip behind
    return PackageInfo(str(target), arch, python, fsd_version(), [w.name for w in wheels], files,
                       unzipped, zipped, stripped, source, notes=notes)


# --------------------------------------------------------------------------- reuse (fsd deploy)

#: Beside a zip built by `ensure_package`: `<zip>.json` with the hash of what went into it
#: (`inputs`), the zip's own SHA-256 and its PackageInfo.
STAMP_SUFFIX = ".json"


def _wheel_fingerprint(arch: str, python: str, wheel_dir: str | os.PathLike[str] | None) -> list[tuple[str, int]]:
    """Names and sizes of the wheels a build may pick from (wheel file names carry versions)."""
    source = Path(wheel_dir).expanduser() if wheel_dir is not None else wheel_cache_dir(arch, python)
    if not source.is_dir():
        return []
    return sorted((p.name, p.stat().st_size) for p in source.glob("*.whl"))


def inputs_digest(arch: str, python: str, wheel_dir: str | os.PathLike[str] | None = None) -> str:
    """SHA-256 of what a build takes: target, version, requirements, the fsd_core sources it
    ships, and the wheels available to it (the --wheel-dir, else the target's cache)."""
    digest = hashlib.sha256()
    head = {"fsd_version": fsd_version(), "arch": arch, "python": python, "requirements": worker_requirements(),
            "wheels": _wheel_fingerprint(arch, python, wheel_dir), "info_name": INFO_NAME}
    digest.update(json.dumps(head, sort_keys=True).encode())
    for path, name in fsd_core_sources():
        data = path.read_bytes()
        digest.update(f"\0{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_package(directory: str | os.PathLike[str], arch: str = DEFAULT_ARCH, python: str = DEFAULT_PYTHON,
                   wheel_dir: str | os.PathLike[str] | None = None,
                   progress: Callable[[str], None] | None = None) -> tuple[PackageInfo, bool]:
    """The package for (arch, python) in `directory`, rebuilt only when the hash of its inputs
    (`inputs_digest`) differs from the one kept beside the zip, or the zip is not the one
    built. Returns (its PackageInfo, whether it was rebuilt)."""
    check_target(arch, python)
    target = Path(directory) / f"fsd-worker-{fsd_version()}-{arch}-py{python}.zip"
    stamp = target.with_name(target.name + STAMP_SUFFIX)
    digest = inputs_digest(arch, python, wheel_dir)
    try:
        kept = json.loads(stamp.read_text())
        if (kept.get("inputs") == digest and target.is_file() and kept.get("sha256") == file_sha256(target)):
            info = PackageInfo(**kept["info"])
            info.path = str(target)
            return info, False
    except (OSError, ValueError, TypeError, KeyError):
        pass  # no stamp, or not one we can read: build
    info = build_package(target, arch, python, wheel_dir, progress=progress)
    # Hash again after the build: a first build from the index fills the wheel cache.
    record = {"inputs": inputs_digest(arch, python, wheel_dir), "sha256": file_sha256(target), "info": info.summary()}
    atomic_write_text(stamp, json.dumps(record, indent=1) + "\n")
    return info, True


# --------------------------------------------------------------------------- upload

def upload_package(info: PackageInfo, manifest: Any) -> PackageInfo:
    """Put the zip under packages/ in the package bucket (the deployment bucket for a manifest
    from before `package_bucket` was an output); point the function at it if any.

    A function whose architecture or runtime differs from the package is refused (InputError):
    its code would not load. Returns `info` with `key` (and `function_updated`) filled in.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from .clients import client

    # The package bucket once the manifest names it (Terraform outputs `package_bucket`), else
    # the deployment bucket, as before.
    bucket = getattr(manifest, "package_bucket", None) or manifest.bucket
    if not bucket:
        raise InputError(f"{manifest.source}: the deployment has no bucket to upload the package to")
    key = package_key(info.arch, info.python)
    try:
        lam = client(manifest, "lambda") if manifest.function_name else None
        if lam is not None:
            config = lam.get_function_configuration(FunctionName=manifest.function_name)
            arches = config.get("Architectures") or ["x86_64"]
            runtime = config.get("Runtime")
            if info.arch not in arches or runtime != f"python{info.python}":
                raise InputError(f"function {manifest.function_name} runs {runtime} on {'/'.join(arches)}, the "
                                 f"package is for python{info.python} on {info.arch}: rebuild with --arch/--python "
                                 f"or change Terraform's architecture/runtime")
        client(manifest, "s3").upload_file(info.path, bucket, key)
        info.key = key
        if lam is not None:
            lam.update_function_code(FunctionName=manifest.function_name, S3Bucket=bucket, S3Key=key)
            info.function_updated = manifest.function_name
    except (BotoCoreError, ClientError) as exc:
        raise RunError(f"upload to {bucket} failed: {str(exc).splitlines()[0]}") from exc
    return info


def delete_packages(manifest: Any, bucket: str) -> int:
    """Delete every object version and delete marker in the package bucket `bucket` (what
    `fsd destroy --delete-packages` does before Terraform deletes the bucket, whose
    force_destroy is off by default). Returns how many were deleted."""
    from botocore.exceptions import BotoCoreError, ClientError

    from .clients import client

    s3 = client(manifest, "s3")
    deleted = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            keys = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for start in range(0, len(keys), 1000):
                answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start:start + 1000], "Quiet": True})
                if answer.get("Errors"):
                    error = answer["Errors"][0]
                    raise RunError(f"cannot delete s3://{bucket}/{error.get('Key')}: {error.get('Code')}")
                deleted += len(keys[start:start + 1000])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return deleted
        raise RunError(f"emptying the package bucket {bucket} failed: {str(exc).splitlines()[0]}") from exc
    except BotoCoreError as exc:
        raise RunError(f"emptying the package bucket {bucket} failed: {exc}") from exc
    return deleted
