"""`fsd package` and the deployed entry point.

- Offline: usage errors, a wheel dir missing a wheel, an unreachable index, the zip's layout
  (built from tiny stand-in wheels), Lambda's size limits, and the upload to the emulator's
  bucket with UpdateFunctionCode.
- With real wheels (pip download, cached for the session; skipped only when the package
  index is unreachable): the zip built for this interpreter imports `fsd_core.engine.handler` and
  runs a worker in a fresh, isolated interpreter whose only third-party code is the zip.
- The handler invoked in-process with real events against the emulator (P=1, and P=2 with
  worker 1 started by the handler's own launch tree), bit-identical to the serial kernel.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fsd_core.aws import package as pkg
from fsd_core.aws.clients import client
from fsd_core.aws.manifest import Manifest
from fsd_core.cli import main
from fsd_core.engine.handler import handler
from fsd_core.engine.payloads import RESULT_KEY, inputs_key, matrix_to_bytes, result_from_bytes, shard_key
from fsd_core.engine.s3_stage import S3Stage
from fsd_core.engine.stage import DirectoryStage, Stage
from fsd_core.errors import InputError
from fsd_core.kernel.serial import infer
from fsd_core.model.radixnet import radixnet, synthetic_inputs
from fsd_core.plan.communication import make_plan
from fsd_core.run.cleanup import cleanup_channel
from fsd_core.run.coordinator import activations_equal

HERE_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
HERE_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
#: What the Lambda Python runtime brings: boto3 and its dependencies.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
#: Imported by numpy.f2py only when present (try/except): not needed by a worker.
OPTIONAL = {"charset-normalizer"}


# --------------------------------------------------------------------------- helpers

def fake_wheel(directory: Path, name: str, version: str, arch: str, python: str,
               files: dict[str, str]) -> Path:
    """A tiny but valid wheel for one target, so package builds can be tested offline."""
    py = "cp" + python.replace(".", "")
    path = directory / f"{name}-{version}-{py}-{py}-manylinux2014_{pkg.ARCHITECTURES[arch]}.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


def fake_wheels(directory: Path, arch: str, python: str, skip: tuple[str, ...] = ()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    contents = {
        "numpy": ("2.2.6", {"numpy/__init__.py": "FAKE = True\n", "numpy/__init__.pyi": "",
                            "numpy/core.py": "", "numpy/_core/tests/test_big.py": "x = 1\n",
                            "numpy/_core/tests/_natype.py": "pd_NA = None\n",
                            "numpy/_core/tests/data/blob.bin": "0" * 1000,
                            "numpy/__pycache__/core.cpython-311.pyc": ""}),
        "scipy": ("1.16.3", {"scipy/__init__.py": "", "scipy/sparse.pxd": "",
                             "scipy-1.16.3.data/platlib/scipy_extra.py": "",
                             "scipy-1.16.3.data/scripts/tool": "#!/bin/sh\n"}),
        "xxhash": ("4.1.0", {"xxhash/__init__.py": "", "xxhash/_xxhash.cpython-311-x.so": "elf"}),
        "zstandard": ("0.25.0", {"zstandard/__init__.py": "", "zstandard/backend_c.cpython-311-x.so": "elf",
                                 "zstandard/_cffi.cpython-311-x.so": "elf" * 100}),
    }
    for name, (version, files) in contents.items():
        if name not in skip:
            fake_wheel(directory, name, version, arch, python, files)
    return directory


def run_fsd(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("fsd:")]
    assert len(lines) == 1, err
    return lines[0]


# --------------------------------------------------------------------------- offline

@pytest.mark.parametrize("argv, named", [
    (["--arch", "sparc"], "'sparc'"),
    (["--python", "3.9"], "'3.9'"),
])
def test_unknown_target_is_a_one_line_usage_error(capsys, tmp_path, argv, named):
    code, out, err = run_fsd(capsys, "package", *argv, "--out", str(tmp_path / "p.zip"))
    line = one_line_error(err)
    assert code == 2 and named in line and ("x86_64, arm64" in line or "3.11, 3.12" in line)
    assert not (tmp_path / "p.zip").exists()


def test_wheel_dir_missing_a_wheel_names_it(capsys, tmp_path):
    wheels = fake_wheels(tmp_path / "wheels", "arm64", "3.11", skip=("scipy",))
    out_zip = tmp_path / "p.zip"
    code, _, err = run_fsd(capsys, "package", "--arch", "arm64", "--python", "3.11",
                           "--wheel-dir", str(wheels), "--out", str(out_zip))
    line = one_line_error(err)
    assert code == 2 and "scipy>=" in line and str(wheels) in line and "aarch64" in line
    assert not out_zip.exists() and list(tmp_path.glob(".p.zip*")) == []


def test_wheel_dir_that_does_not_exist(capsys, tmp_path):
    code, _, err = run_fsd(capsys, "package", "--wheel-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "p.zip"))
    assert code == 2 and "no such directory" in one_line_error(err)


def test_unreachable_index_without_wheel_dir(capsys, tmp_path, monkeypatch):
    """pip pointed at a closed loopback port, no pip config, an empty cache: exit 2, says why."""
    for var in [v for v in os.environ if v.startswith("PIP_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    monkeypatch.setenv("FSD_WHEEL_CACHE", str(tmp_path / "cache"))
    code, _, err = run_fsd(capsys, "package", "--arch", "x86_64", "--out", str(tmp_path / "p.zip"))
    line = one_line_error(err)
    assert code == 2 and "unreachable" in line and "--wheel-dir" in line and "Connection refused" in line
    assert not (tmp_path / "p.zip").exists()


def test_layout_of_a_package_built_from_a_wheel_dir(tmp_path):
    wheels = fake_wheels(tmp_path / "wheels", "arm64", "3.12")
    first = pkg.build_package(tmp_path / "a" / "p.zip", "arm64", "3.12", wheels)
    again = pkg.build_package(tmp_path / "b" / "p.zip", "arm64", "3.12", wheels)
    path = Path(first.path)
    assert path.read_bytes() == Path(again.path).read_bytes()  # reproducible
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["p.zip"]  # no temp file left behind
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        info = json.loads(archive.read(pkg.INFO_NAME))
        unzipped = sum(i.file_size for i in archive.infolist())
    assert {"fsd_core/__init__.py", "fsd_core/engine/handler.py", "fsd_core/engine/worker.py",
            "fsd_core/engine/launch.py", "fsd_core/channels/queue.py", "fsd_core/engine/s3_stage.py"} <= names
    assert not any(n.startswith("fsd_core/cli/") for n in names)
    assert "fsd_core/aws/terraform.py" not in names and "fsd_core/aws/package.py" not in names
    assert not any(n.endswith((".pyc", ".pyi", ".pxd")) or "__pycache__" in n for n in names)
    assert {"numpy/__init__.py", "numpy/_core/tests/_natype.py", "scipy_extra.py",
            "zstandard/backend_c.cpython-311-x.so", "xxhash/_xxhash.cpython-311-x.so",
            "numpy-2.2.6.dist-info/METADATA"} <= names
    assert not names & {"numpy/_core/tests/test_big.py", "numpy/_core/tests/data/blob.bin", "tool",
                        "zstandard/_cffi.cpython-311-x.so", "numpy-2.2.6.dist-info/RECORD"}
    assert not any(n.startswith(("boto3/", "botocore/")) for n in names)
    assert info["arch"] == "arm64" and info["python"] == "3.12" and len(info["wheels"]) == 4
    assert first.unzipped_bytes == unzipped and first.zipped_bytes == path.stat().st_size
    assert first.stripped_bytes > 1000 and first.wheel_source == str(wheels)


def test_platform_tags_follow_the_runtime_glibc():
    assert pkg.platforms("arm64", "3.11")[0] == "manylinux2014_aarch64"
    assert pkg.platforms("arm64", "3.11")[-1] == "manylinux_2_26_aarch64"  # Amazon Linux 2
    assert pkg.platforms("x86_64", "3.12")[-1] == "manylinux_2_34_x86_64"  # Amazon Linux 2023


def test_size_limits():
    assert pkg.check_limits(100 * 2**20, 40 * 2**20) == []
    notes = pkg.check_limits(200 * 2**20, 60 * 2**20)
    assert len(notes) == 1 and "through S3" in notes[0]
    with pytest.raises(InputError, match=r"260\.0 MB unzipped \(70\.0 MB zipped\), over Lambda's 250\.0 MB"):
        pkg.check_limits(260 * 2**20, 70 * 2**20)


def test_the_package_ships_what_the_worker_imports():
    """The distributions a worker loads (handler, every channel, the S3 stage, the launcher),
    less what Lambda's runtime provides, are exactly the ones the package ships."""
    code = ("import json, sys, importlib.metadata as md\n"
            "before = set(sys.modules)  # what site loaded (e.g. setuptools' distutils hack)\n"
            "import fsd_core.engine.handler, fsd_core.channels.local, fsd_core.channels.queue, "
            "fsd_core.channels.object, fsd_core.engine.s3_stage, fsd_core.engine.launch, fsd_core.aws.clients\n"
            "m = md.packages_distributions()\n"
            "print(json.dumps(sorted({d for top in {n.split('.')[0] for n in sys.modules} "
            "if top not in before for d in m.get(top, [])})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {d.lower().replace("_", "-") for d in json.loads(out.stdout.splitlines()[-1])}
    loaded -= {"fsd-inference"} | RUNTIME_PROVIDED | OPTIONAL
    assert loaded == set(pkg.WORKER_DISTRIBUTIONS)
    assert sorted(r.split(">")[0] for r in pkg.worker_requirements()) == sorted(pkg.WORKER_DISTRIBUTIONS)


def test_upload_updates_the_emulated_function(capsys, tmp_path, local_deployment):
    lam = client(local_deployment, "lambda")
    config = lam.get_function_configuration(FunctionName=local_deployment.function_name)
    arch, python = (config.get("Architectures") or ["x86_64"])[0], config["Runtime"].removeprefix("python")
    manifest_file = tmp_path / "manifest.json"
    local_deployment.save(manifest_file)
    wheels = fake_wheels(tmp_path / "wheels", arch, python)
    out_zip = tmp_path / "p.zip"
    code, out, err = run_fsd(capsys, "package", "--arch", arch, "--python", python, "--wheel-dir", str(wheels),
                             "--out", str(out_zip), "--upload", "--manifest", str(manifest_file))
    assert code == 0, err
    key = pkg.package_key(arch, python)
    bucket = local_deployment.package_bucket  # packages apart from run data
    assert bucket and bucket != local_deployment.bucket
    assert f"uploaded: s3://{bucket}/{key}" in out and f"package_s3_key={key}" in out
    body = client(local_deployment, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == out_zip.read_bytes()
    after = lam.get_function_configuration(FunctionName=local_deployment.function_name)
    assert after["CodeSha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert after["CodeSha256"] != config["CodeSha256"]

    other = "x86_64" if arch == "arm64" else "arm64"  # a package the function could not load
    fake_wheels(tmp_path / "other", other, python)
    code, _, err = run_fsd(capsys, "package", "--arch", other, "--python", python, "--wheel-dir",
                           str(tmp_path / "other"), "--out", str(tmp_path / "q.zip"), "--upload",
                           "--manifest", str(manifest_file))
    line = one_line_error(err)
    assert code == 2 and arch in line and other in line and "rebuild" in line
    assert lam.get_function_configuration(FunctionName=local_deployment.function_name)["CodeSha256"] == \
        after["CodeSha256"]


# --------------------------------------------------------------------------- real wheels

@pytest.fixture(scope="session")
def real_package(tmp_path_factory) -> Path:
    """The package for this interpreter's Python and arch, built from real wheels (cached in
    the session's directory, or in $FSD_WHEEL_CACHE if the environment sets one)."""
    if HERE_ARCH not in pkg.ARCHITECTURES or HERE_PYTHON not in pkg.PYTHONS:
        pytest.skip(f"no Lambda target for this interpreter ({HERE_ARCH}, Python {HERE_PYTHON})")
    base = tmp_path_factory.mktemp("package")
    saved = os.environ.get("FSD_WHEEL_CACHE")
    os.environ.setdefault("FSD_WHEEL_CACHE", str(base / "wheel-cache"))
    try:
        info = pkg.build_package(base / "fsd-worker.zip", HERE_ARCH, HERE_PYTHON)
    except pkg.IndexUnreachable as exc:
        pytest.skip(f"the package index is unreachable, no wheels to build with: {exc}")
    finally:
        if saved is None:
            os.environ.pop("FSD_WHEEL_CACHE", None)
    assert info.unzipped_bytes < pkg.LAMBDA_MAX_UNZIPPED
    return Path(info.path)


def stage_inputs(stage: Stage, model, inputs: sp.csr_matrix, workers: int) -> None:
    """Shards and inputs exactly as the coordinator stages them."""
    y0 = sp.csc_matrix(inputs, dtype=np.float32)
    for p, shard in enumerate(make_plan(model, workers, "block").shards(model)):
        stage.put(shard_key(p), shard.to_bytes())
        stage.put(inputs_key(p), matrix_to_bytes(y0[:, shard.input_cols]))


@pytest.fixture(scope="module")
def rx():
    model, inputs = radixnet(256, 4, seed=1), synthetic_inputs(256, 16, seed=2)
    reference = infer(model, inputs).activations
    assert reference.nnz > 0  # a result that is not trivially empty
    return model, inputs, reference


def test_handler_imports_and_runs_from_the_zip_alone(real_package, tmp_path, rx):
    """A fresh interpreter (-I -S: no site-packages, no PYTHON* variables) whose sys.path is
    the stdlib plus the unzipped package runs worker 0 of a local P=1 run."""
    root = tmp_path / "unzipped"
    with zipfile.ZipFile(real_package) as archive:
        archive.extractall(root)
    model, inputs, reference = rx
    run_id = uuid.uuid4().hex[:12]
    stage = DirectoryStage(tmp_path / run_id / "stage")
    stage_inputs(stage, model, inputs, 1)
    event = {"run_id": run_id, "worker": 0, "workers": 1, "branching": 2, "variant": "local",
             "channel": {"root": str(tmp_path / "channel" / run_id)}, "stage": stage.config(),
             "launcher": {"kind": "local"}, "manifest": None, "timeout": 30, "requested_at": time.time()}
    code = (f"import sys, json, importlib.util\nsys.path.insert(0, {str(root)!r})\n"
            "import fsd_core.engine.handler, numpy, scipy, scipy.sparse, xxhash, zstandard\n"
            "out = fsd_core.engine.handler.handler(json.loads(sys.argv[1]))\n"
            "print(json.dumps({'result': out,"
            " 'files': [m.__file__ for m in (fsd_core.engine.handler, numpy, scipy, xxhash, zstandard)],"
            " 'boto3': importlib.util.find_spec('boto3') is not None, 'path': sys.path}))")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, json.dumps(event)], capture_output=True,
                          text=True, cwd=tmp_path, env={"PATH": os.environ.get("PATH", "/usr/bin")}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["result"] == {"worker": 0, "status": "ok"}
    assert all(f.startswith(str(root) + os.sep) for f in got["files"]), got["files"]
    assert not got["boto3"]  # not shipped, not needed by the local path; Lambda's runtime has it
    assert not any("site-packages" in p for p in got["path"])
    assert activations_equal(result_from_bytes(stage.get(RESULT_KEY)), reference)


# --------------------------------------------------------------------------- in-process handler

def _event(run_id: str, workers: int, variant: str, stage: S3Stage, manifest: Manifest) -> dict:
    return {"run_id": run_id, "worker": 0, "workers": workers, "branching": 2, "variant": variant,
            "channel": {"manifest": manifest.to_dict(), "key": "c0" * 32}, "stage": stage.config(),
            "launcher": {"kind": "local"}, "manifest": manifest.to_dict(), "timeout": 30,
            "launch_grace": 30, "requested_at": time.time()}


def _leftovers(manifest: Manifest, run_id: str) -> list[str]:
    s3 = client(manifest, "s3")
    return [o["Key"] for prefix in (f"stage/{run_id}/", f"runs/{run_id}/")
            for o in s3.list_objects_v2(Bucket=manifest.bucket, Prefix=prefix).get("Contents", [])]


@pytest.mark.parametrize("variant, workers", [("object", 1), ("object", 2), ("queue", 2)])
def test_handler_in_process_against_the_emulator(local_deployment, rx, variant, workers):
    model, inputs, reference = rx
    run_id = uuid.uuid4().hex[:12]
    stage = S3Stage(local_deployment, f"stage/{run_id}/")
    failed = True
    try:
        stage_inputs(stage, model, inputs, workers)
        assert handler(_event(run_id, workers, variant, stage, local_deployment), None) == \
            {"worker": 0, "status": "ok"}
        assert activations_equal(result_from_bytes(stage.get(RESULT_KEY)), reference)
        reports = [json.loads(stage.get(f"report-{p}.json")) for p in range(workers)]
        assert [r["status"] for r in reports] == ["ok"] * workers
        assert reports[0]["pid"] == os.getpid()  # worker 0 ran here
        for child in reports[1:]:  # started by the handler's launch tree, and reaped by it
            assert child["pid"] != os.getpid()
            with pytest.raises(ChildProcessError):
                os.waitpid(child["pid"], os.WNOHANG)
            assert not Path(f"/proc/{child['pid']}").exists()
        if workers > 1:
            assert reports[0]["channel"]["messages_sent"] + reports[1]["channel"]["messages_sent"] > 0
        failed = False
    finally:
        stage.delete_all()
        cleanup_channel(variant, local_deployment.to_dict(), run_id, workers, failed=failed)
    assert _leftovers(local_deployment, run_id) == []
