"""Terraform through python-terraform: init (offline, from a provider mirror), plan, apply,
outputs. The outputs of the root module (terraform/outputs.tf) are the deployment manifest.

A :class:`TerraformProject` is a working directory holding a copy of the root module (copied
afresh before each command, so the state never lands in the source tree) and its state (local,
or in the backend given to `fsd deploy --backend-config`). `fsd local up` uses
``<data dir>/local/terraform`` with the provider pointed at the emulator and applies at once
(``apply``: the local emulator is the user's own, on demand). `fsd deploy` and `fsd destroy`
use ``<data dir>/deploy``, plan first and apply exactly the saved plan after confirmation
(:func:`deploy`, :func:`destroy`):

    terraform init [-backend-config=...]     (the backend settings are recorded for destroy)
    terraform console                        (the variables as resolved: region, endpoint, ...)
    fsd doctor's account checks               (credentials, region, concurrency; blockers stop here)
    fsd package, unless its inputs are unchanged (then the zip beside its hash is reused)
    terraform plan -out=fsd.tfplan            (summary: N to add/change/destroy, every address)
    confirm(plan)                             (the command line asks `Apply? [y/N]` or has --yes)
    terraform apply fsd.tfplan                (what was shown, nothing else)

Terraform output is streamed line by line to a progress callback (stderr on the command
line) and kept in ``terraform-<command>.log`` in the working directory; a failure raises one
RunError line naming the command, the first ``Error:`` line and the log.

Environment: ``FSD_TERRAFORM`` (terraform binary, default from PATH), ``FSD_TF_PLUGIN_DIR``
(provider mirror; default: searched under common roots for
``registry.terraform.io/hashicorp/aws``), ``FSD_TERRAFORM_DIR`` (root module source).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, IsNotFlagged, Terraform

from ..errors import InputError, RunError
from ..fileio import PRIVATE_FILE, atomic_write_text, private_dir
from ..paths import data_dir
from .manifest import Manifest, deploy_manifest_path

#: Where a provider mirror is looked for, in order (each searched a few levels deep).
MIRROR_ROOTS = ("~/.terraform.d/plugins", "~/.terraform.d", "/usr/local/share/terraform",
                "/usr/share/terraform", "/opt", "/usr/local/share", "/usr/local/lib", "/usr/share")
_MIRROR_MARK = ("registry.terraform.io", "hashicorp", "aws")
_MIRROR_DEPTH = 4
#: Lines a summary (non-verbose) progress stream keeps: resource progress, totals, errors.
_SUMMARY = re.compile(r"^(\S+: (Creating|Creation complete|Still creating|Modifying|"
                      r"Modifications complete|Still modifying|Destroying|Destruction complete|"
                      r"Still destroying)|Plan:|Apply complete|Destroy complete|Error|Warning)")


def terraform_source_dir() -> Path:
    """The root module: `$FSD_TERRAFORM_DIR`, else `terraform/` next to the package."""
    source = Path(os.environ.get("FSD_TERRAFORM_DIR") or Path(__file__).resolve().parents[2] / "terraform")
    if not (source / "main.tf").is_file():
        raise InputError(f"{source}: no Terraform root module here (set FSD_TERRAFORM_DIR)")
    return source


def terraform_binary() -> str:
    """Path of the terraform binary; RunError if there is none."""
    explicit = os.environ.get("FSD_TERRAFORM")
    found = shutil.which(explicit or "terraform")
    if not found:
        what = f"FSD_TERRAFORM={explicit}" if explicit else "terraform"
        raise RunError(f"{what} not found: install Terraform >= 1.5 or set FSD_TERRAFORM")
    return found


def _is_mirror(path: Path) -> bool:
    return path.joinpath(*_MIRROR_MARK).is_dir()


def find_plugin_mirror() -> Path | None:
    """A filesystem mirror holding the AWS provider: `$FSD_TF_PLUGIN_DIR` or searched."""
    explicit = os.environ.get("FSD_TF_PLUGIN_DIR")
    if explicit:
        path = Path(explicit).expanduser()
        if not _is_mirror(path):
            raise InputError(f"FSD_TF_PLUGIN_DIR={explicit} holds no "
                             f"{'/'.join(_MIRROR_MARK)} provider")
        return path
    for root in MIRROR_ROOTS:
        found = _search_mirror(Path(root).expanduser(), _MIRROR_DEPTH)
        if found is not None:
            return found
    return None


def _search_mirror(path: Path, depth: int) -> Path | None:
    """Breadth-first search for a mirror directory, at most `depth` levels below `path`."""
    level = [path]
    for _ in range(depth + 1):
        following: list[Path] = []
        for directory in level:
            if _is_mirror(directory):
                return directory
            try:
                following.extend(p for p in directory.iterdir()
                                 if p.is_dir() and not p.is_symlink() and p.name != "proc")
            except OSError:
                continue
        level = sorted(following)
    return None


#: Terraform state holds every resource's attributes (ARNs, URLs, sometimes secrets): what
#: terraform writes is this user's only (0600 files, 0700 directories).
TERRAFORM_UMASK = 0o077


def private_state(workdir: Path) -> None:
    """Make the working directory's state files 0600 (ones an older fsd left readable too)."""
    for path in workdir.glob("*.tfstate*"):
        try:
            if path.stat().st_mode & 0o777 != PRIVATE_FILE:
                os.chmod(path, PRIVATE_FILE)
        except OSError:
            pass


class _StreamingTerraform(Terraform):
    """python-terraform whose commands stream output line by line and take an environment."""

    def __init__(self, working_dir: str, env: dict[str, str],
                 progress: Callable[[str], None] | None, log_dir: Path, verbose: bool) -> None:
        super().__init__(working_dir=working_dir, terraform_bin_path=terraform_binary())
        self._env = env
        self._progress = progress
        self._log_dir = log_dir
        self._verbose = verbose

    def cmd(self, cmd: str, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
        """Run `terraform cmd`; returns (exit code, output, "") like python-terraform."""
        stream = kwargs.pop("stream", True)
        kwargs.pop("capture_output", None)
        kwargs.pop("raise_on_error", None)
        argv = self.generate_cmd_string(cmd, *args, **kwargs)
        lines: list[str] = []
        try:
            proc = subprocess.Popen(argv, cwd=self.working_dir, env=self._env, text=True, umask=TERRAFORM_UMASK,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT if stream else subprocess.PIPE)
        except OSError as exc:
            raise RunError(f"cannot run {argv[0]}: {exc.strerror}") from exc
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if stream and self._progress and line.strip() and (
                        self._verbose or _SUMMARY.match(line)):
                    self._progress(line.rstrip("\n"))
            err = proc.stderr.read() if proc.stderr else ""
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            self.temp_var_files.clean_up()
            private_state(Path(self.working_dir))
        out = "".join(lines)
        if stream:
            atomic_write_text(self._log_dir / f"terraform-{cmd}.log", out + err)
        return code, out, err


def _first_error(text: str) -> str:
    for line in text.splitlines():
        line = line.strip(" │╷╵")
        if line.startswith("Error:"):
            return line
    tail = [line.strip() for line in text.splitlines() if line.strip()]
    return tail[-1] if tail else "no output"


def _error_detail(text: str) -> str:
    """The first `Error:` of Terraform's output with its explanation (source lines left out):
    e.g. "Error: Invalid value for variable: max_workers must be an integer between 1 and 1024."."""
    lines = [line.strip(" │╷╵") for line in text.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("Error:"):
            detail = []
            for following in lines[i + 1:]:
                if following.startswith(("Error:", "Warning:")):
                    break
                if (not following or following.startswith(("on ", "├", "This was checked", "(source code"))
                        or re.match(r"^\d+:", following) or "────" in following):
                    continue
                detail.append(following)
            return line + (": " + " ".join(detail) if detail else "")
    return _first_error(text)


#: Terraform's plan symbols for a resource's actions ("read" and "no-op" are not changes).
_SYMBOLS = {("create",): "+", ("update",): "~", ("delete",): "-", ("delete", "create"): "-/+",
            ("create", "delete"): "+/-", ("forget",): "forget"}
PLAN_FILE = "fsd.tfplan"


@dataclass
class Plan:
    """A saved Terraform plan, as `terraform show -json` describes it."""

    path: Path
    destroy: bool
    #: (symbol, address) of every resource that changes, in Terraform's order.
    changes: list[tuple[str, str]]
    add: int
    change: int
    remove: int
    #: Root outputs whose value changes (an apply is needed for them alone, too).
    outputs_changed: int
    #: The input variables the plan was made with (name -> value).
    variables: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    _deleted_package_bucket: str | None = field(default=None, repr=False)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.outputs_changed

    @property
    def package_bucket(self) -> str | None:
        """The name of this deployment's package bucket if the plan deletes it."""
        return self._deleted_package_bucket

    def headline(self) -> str:
        if self.empty:
            return "terraform plan: no changes"
        kind = "terraform plan -destroy" if self.destroy else "terraform plan"
        outputs = f" (and {self.outputs_changed} output{'s' if self.outputs_changed != 1 else ''})" \
            if self.outputs_changed and not self.destroy else ""
        return f"{kind}: {self.add} to add, {self.change} to change, {self.remove} to destroy{outputs}"

    def summary(self) -> list[str]:
        """The headline, one line per changing resource address, then the notes."""
        return [self.headline(), *(f"  {symbol:<4} {address}" for symbol, address in self.changes),
                *(f"note: {note}" for note in self.notes)]

    def to_dict(self) -> dict[str, Any]:
        return {"mode": "destroy" if self.destroy else "apply", "add": self.add, "change": self.change,
                "destroy": self.remove,
                "outputs_changed": self.outputs_changed,
                "changes": [{"action": symbol, "address": address} for symbol, address in self.changes],
                "notes": list(self.notes)}

    @classmethod
    def from_show(cls, path: Path, destroy: bool, shown: dict[str, Any]) -> Plan:
        changes: list[tuple[str, str]] = []
        add = change = remove = 0
        for rc in shown.get("resource_changes") or []:
            actions = tuple(rc.get("change", {}).get("actions") or ())
            if rc.get("mode") == "data" or actions in (("no-op",), ("read",)) or not actions:
                continue
            symbol = _SYMBOLS.get(actions, "/".join(actions))
            changes.append((symbol, rc["address"]))
            add += "create" in actions
            change += "update" in actions
            remove += "delete" in actions
        outputs = sum(1 for oc in (shown.get("output_changes") or {}).values()
                      if tuple(oc.get("actions") or ()) not in (("no-op",), ()))
        variables = {name: v.get("value") for name, v in (shown.get("variables") or {}).items()}
        plan = cls(path, destroy, changes, add, change, remove, outputs, variables)
        plan.notes = _plan_notes(plan, shown)
        return plan


def _plan_notes(plan: Plan, shown: dict[str, Any]) -> list[str]:
    """What the summary should warn about: a package bucket that destroy cannot delete (and
    remember the package bucket the plan deletes)."""
    notes = []
    deleting = {address for symbol, address in plan.changes if "-" in symbol}
    for resource in _state_resources(shown.get("prior_state") or {}):
        values = resource.get("values") or {}
        address = resource.get("address", "")
        if address in deleting and resource.get("type") == "aws_s3_bucket" and address.startswith("module.package_bucket"):
            plan._deleted_package_bucket = values.get("bucket")
            if values.get("force_destroy") is False:
                notes.append(f"the package bucket {values.get('bucket')} has force_destroy = false "
                             f"(package_force_destroy): terraform stops there while it holds packages (any version)")
    return notes


def _state_resources(state: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(module: dict[str, Any]) -> None:
        found.extend(module.get("resources") or [])
        for child in module.get("child_modules") or []:
            walk(child)

    walk((state.get("values") or {}).get("root_module") or {})
    return found


def _backend_declared(directory: Path) -> bool:
    return any(re.search(r'^\s*backend\s+"', path.read_text(errors="replace"), re.MULTILINE)
               for path in directory.glob("*.tf"))


class TerraformProject:
    """One Terraform working directory: a copy of the root module plus its state."""

    #: Written into the working directory when backend settings are given and the root module
    #: declares no backend (terraform/README.md, Remote state): settings only come at init.
    BACKEND_FILE = "fsd_backend.tf"
    BACKEND_RECORD = "backend.json"

    def __init__(self, workdir: str | os.PathLike[str], env: dict[str, str] | None = None,
                 progress: Callable[[str], None] | None = None, verbose: bool = True) -> None:
        """`progress` receives output lines: all of them if `verbose`, else a summary."""
        self.workdir = Path(workdir)
        self.progress = progress
        self.verbose = verbose
        self._extra_env = dict(env or {})

    # -- plumbing

    def _say(self, line: str) -> None:
        if self.progress:
            self.progress(line)

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
               "TF_INPUT": "0"}
        mirror = find_plugin_mirror()
        if mirror is not None:
            rc = self.workdir / ".terraformrc"
            atomic_write_text(rc, "provider_installation {\n  filesystem_mirror {\n"
                                  f"    path    = {json.dumps(str(mirror))}\n"
                                  '    include = ["registry.terraform.io/hashicorp/*"]\n'
                                  "  }\n}\n")
            env["TF_CLI_CONFIG_FILE"] = str(rc)
        elif env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).exists():
            del env["TF_CLI_CONFIG_FILE"]  # a dangling config: let terraform use its defaults
        for key, value in self._extra_env.items():
            if value:
                env[key] = value
            else:
                env.pop(key, None)
        return env

    def _stage(self, backend: list[str]) -> None:
        """Replace the module copy in the working dir, keeping state and .terraform/."""
        source = terraform_source_dir()
        private_dir(self.workdir)
        for old in self.workdir.glob("*.tf"):
            old.unlink()
        shutil.rmtree(self.workdir / "modules", ignore_errors=True)
        shutil.copytree(source, self.workdir, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl",
                                                      "*.tfstate*", "*.tfvars*", "README.md"))
        private_dir(self.workdir)  # (copytree gave it the source's mode)
        if backend and not _backend_declared(self.workdir):
            atomic_write_text(self.workdir / self.BACKEND_FILE,
                              "# Written by fsd: --backend-config was given and the root module declares no\n"
                              "# backend (terraform/README.md, Remote state). The settings come at init.\n"
                              'terraform {\n  backend "s3" {}\n}\n')

    def _terraform(self, quiet: bool = False) -> _StreamingTerraform:
        """`quiet`: stream nothing to progress (the output still goes to the command's log)."""
        return _StreamingTerraform(str(self.workdir), self._environment(), None if quiet else self.progress,
                                   self.workdir, self.verbose)

    def _check(self, name: str, result: tuple[int, str, str]) -> str:
        code, out, err = result
        if code != 0:
            raise RunError(f"terraform {name} failed (exit {code}): {_first_error(out + err)} "
                           f"(log: {self.workdir / f'terraform-{name}.log'})")
        return out

    def _var_file(self, variables: dict[str, Any] | None, var_file: str | None) -> list[str]:
        """Var files for apply/destroy: ours (recorded, so destroy reuses it) then the user's."""
        recorded = self.workdir / "fsd.tfvars.json"
        if variables is not None:
            atomic_write_text(recorded, json.dumps(variables, indent=1) + "\n")
        files = [str(recorded)] if recorded.exists() else []
        return files + self._user_var_file(var_file)

    def _user_var_file(self, var_file: str | None) -> list[str]:
        """The user's var file: given now (and recorded), else the one recorded last time."""
        if var_file is not None:
            path = Path(var_file).expanduser().resolve()
            if not path.is_file():
                raise InputError(f"{var_file}: no such var file")
            atomic_write_text(self.workdir / "user.tfvars.path", str(path))
            return [str(path)]
        if (self.workdir / "user.tfvars.path").exists():
            return [(self.workdir / "user.tfvars.path").read_text()]
        return []

    def _backend_settings(self, backend_config: list[str] | None) -> list[str]:
        """`-backend-config` values: the ones given (checked, files made absolute, recorded so
        that destroy inits the same backend), else the recorded ones."""
        record = self.workdir / self.BACKEND_RECORD
        if backend_config is None:
            try:
                return list(json.loads(record.read_text()))
            except (OSError, ValueError):
                return []
        settings = []
        for item in backend_config:
            path = Path(item).expanduser()
            if path.is_file():
                settings.append(str(path.resolve()))
            elif re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", item):
                settings.append(item)
            else:
                raise InputError(f"--backend-config {item!r}: neither a file nor KEY=VALUE")
        private_dir(self.workdir)
        atomic_write_text(record, json.dumps(settings, indent=1) + "\n", mode=0o600)
        return settings

    @property
    def has_state(self) -> bool:
        """Local state here, or a recorded backend (whose state is elsewhere)."""
        return (self.workdir / "terraform.tfstate").exists() or bool(self._backend_settings(None))

    # -- commands

    def init(self, backend_config: list[str] | None = None) -> None:
        """Stage the module and `terraform init` (offline when a mirror is found); with backend
        settings (given now or recorded by an earlier init), the state lives in that backend."""
        backend = self._backend_settings(backend_config)
        self._stage(backend)
        tf = self._terraform()
        self._check("init", tf.init(backend=True, reconfigure=IsNotFlagged, no_color=IsFlagged,
                                    input=False, backend_config=backend or None))

    def variables(self, names: list[str], files: list[str]) -> dict[str, Any]:
        """The values of input variables `names` as Terraform resolves them from `files` and
        the defaults (`terraform console`: no provider call, no credentials needed)."""
        expression = "jsonencode({" + ", ".join(f"{n} = var.{n}" for n in names) + "})\n"
        argv = [terraform_binary(), "console", "-no-color", *(f"-var-file={f}" for f in files)]
        try:
            proc = subprocess.run(argv, check=False, cwd=self.workdir, env=self._environment(), input=expression,
                                  umask=TERRAFORM_UMASK,
                                  capture_output=True, text=True, timeout=300)
        except OSError as exc:
            raise RunError(f"cannot run {argv[0]}: {exc.strerror}") from exc
        text = proc.stdout + proc.stderr
        if proc.returncode != 0 or "Error:" in text:
            atomic_write_text(self.workdir / "terraform-console.log", text)
            raise InputError(f"terraform: {_error_detail(text)} (log: {self.workdir / 'terraform-console.log'})")
        try:
            last = [line for line in proc.stdout.splitlines() if line.strip()][-1]
            values = json.loads(json.loads(last))
        except (IndexError, ValueError, TypeError):
            raise RunError(f"terraform console printed no variables: {_first_error(text)}") from None
        return values if isinstance(values, dict) else {}

    def plan(self, files: list[str], destroy: bool = False, parallelism: int = 10) -> Plan:
        """`terraform plan -out` (``-destroy`` for a destroy plan) and its JSON description."""
        path = self.workdir / PLAN_FILE
        path.unlink(missing_ok=True)
        tf = self._terraform(quiet=True)  # the caller shows the plan's summary
        self._check("plan", tf.cmd("plan", input=False, no_color=IsFlagged, out=PLAN_FILE,
                                   destroy=IsFlagged if destroy else IsNotFlagged,
                                   var_file=files or None, parallelism=parallelism))
        out = self._check("show", tf.cmd("show", PLAN_FILE, json=IsFlagged, no_color=IsFlagged, stream=False))
        try:
            shown = json.loads(out)
        except json.JSONDecodeError as exc:
            raise RunError(f"terraform show -json printed invalid JSON: {exc.msg}") from None
        return Plan.from_show(path, destroy, shown)

    def apply_plan(self, plan: Plan, parallelism: int = 10) -> None:
        """`terraform apply <saved plan>`: exactly what the plan showed (Terraform refuses a
        plan the state moved past). The plan file is removed afterwards, applied or not."""
        tf = self._terraform()
        try:
            self._check("apply", tf.cmd("apply", str(plan.path), input=False, no_color=IsFlagged,
                                        parallelism=parallelism))
        finally:
            plan.path.unlink(missing_ok=True)

    def apply(self, variables: dict[str, Any] | None = None, var_file: str | None = None,
              parallelism: int = 10) -> Manifest:
        """init + apply without a confirmation (the local stack: the emulator is the user's
        own); returns the manifest from the outputs."""
        if var_file is not None and not Path(var_file).expanduser().is_file():
            raise InputError(f"{var_file}: no such var file")
        self._say("terraform init")
        self.init()
        tf = self._terraform()
        files = self._var_file(variables, var_file)
        self._say("terraform apply")
        self._check("apply", tf.apply(skip_plan=True, var_file=files or None,
                                      parallelism=parallelism))
        return self.outputs()

    def output_values(self) -> dict[str, Any]:
        """`terraform output -json` as {name: value}."""
        tf = self._terraform()
        out = self._check("output", tf.cmd("output", json=IsFlagged, no_color=IsFlagged,
                                           stream=False))
        try:
            data = json.loads(out)
        except json.JSONDecodeError as exc:
            raise RunError(f"terraform output -json printed invalid JSON: {exc.msg}") from None
        if not data:
            raise RunError(f"{self.workdir}: terraform has no outputs (nothing applied?)")
        return {k: v.get("value") if isinstance(v, dict) else v for k, v in data.items()}

    def outputs(self) -> Manifest:
        """`terraform output -json` as a validated manifest."""
        return Manifest.from_dict(self.output_values(), f"terraform output ({self.workdir})")


# --------------------------------------------------------------------------- fsd deploy

def deploy_dir() -> Path:
    """Working directory of `fsd deploy` (AWS)."""
    return data_dir() / "deploy"


def _stderr_progress(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


#: Variables `fsd deploy` reads before its plan (terraform console).
_DEPLOY_VARIABLES = ["region", "endpoint", "name_prefix", "max_workers", "architecture", "runtime",
                     "reserved_concurrency", "package_file", "package_s3_key"]


@dataclass
class DeployResult:
    """What `fsd deploy` / `fsd destroy` did; `to_dict()` is their --json document."""

    status: str  # "applied", "no changes", "destroyed", "nothing to destroy"
    plan: Plan
    doctor: Any = None  # doctor.Report of the checks before the plan
    manifest: Manifest | None = None
    manifest_path: str | None = None
    package: Any = None  # package.PackageInfo, None when the var file names the package
    package_rebuilt: bool = False
    package_location: str | None = None  # s3://<package_bucket>/<key> after an apply

    def to_dict(self) -> dict[str, Any]:
        package = None
        if self.package is not None:
            package = {**self.package.summary(), "rebuilt": self.package_rebuilt, "location": self.package_location}
        return {"status": self.status, "plan": self.plan.to_dict(),
                "doctor": self.doctor.to_dict() if self.doctor is not None else None, "package": package,
                "manifest": self.manifest.to_dict() if self.manifest else None, "manifest_path": self.manifest_path}


def _planned_manifest(variables: dict[str, Any]) -> Manifest:
    """A manifest for the account checks before anything exists: region, endpoint, slots and
    the function's name (for its current reservation, if it is deployed already)."""
    return Manifest(region=variables.get("region") or "us-east-1", endpoint=variables.get("endpoint"),
                    topic_arns=[], queue_urls=[], bucket=None,
                    function_name=f"{variables.get('name_prefix') or 'fsd'}-worker",
                    max_workers=int(variables.get("max_workers") or 1), source="the planned deployment")


def deploy(var_file: str | None = None, *, confirm: Callable[[Plan], bool],
           backend_config: list[str] | None = None, wheel_dir: str | None = None,
           progress: Callable[[str], None] | None = _stderr_progress) -> DeployResult:
    """Plan the root module (AWS unless the var file sets `endpoint`), show the plan through
    `progress`, and apply exactly that plan if `confirm(plan)` says yes (else RunError, nothing
    applied). Before the plan: the doctor's account checks (a blocker is an InputError) and the
    worker package for the configured architecture and runtime, rebuilt only when its inputs
    changed, which Terraform uploads to the package bucket (`package_file`) unless the var file
    names a package itself (`package_file` or `package_s3_key`)."""
    from . import doctor
    from .package import ensure_package

    say = progress or (lambda _line: None)
    if var_file is not None and not Path(var_file).expanduser().is_file():
        raise InputError(f"{var_file}: no such var file")
    project = TerraformProject(deploy_dir(), progress=progress, verbose=False)
    say("terraform init")
    project.init(backend_config)
    user_files = project._user_var_file(var_file)
    variables = project.variables(_DEPLOY_VARIABLES, user_files)

    checks = doctor.check(_planned_manifest(variables), reserved_concurrency=variables.get("reserved_concurrency"),
                          resources=False)
    for finding in checks.findings:
        say(f"doctor: {finding.line()}")
    checks.raise_for_blockers("fsd deploy: nothing planned")

    info, rebuilt = None, False
    if variables.get("package_file") or variables.get("package_s3_key"):
        say("package: the var file names it (package_file / package_s3_key): not building one")
        ours: dict[str, Any] = {}
    else:
        runtime = str(variables.get("runtime") or "")
        python = runtime.removeprefix("python")
        arch = str(variables.get("architecture"))
        from .package import ARCHITECTURES, PYTHONS

        if arch not in ARCHITECTURES or python not in PYTHONS:
            raise InputError(f"cannot build a package for runtime {runtime!r} on {arch!r}: choose runtime "
                             f"{' | '.join('python' + p for p in PYTHONS)} and architecture {' | '.join(ARCHITECTURES)}")
        say(f"package: python{python} on {arch}")
        info, rebuilt = ensure_package(project.workdir / "package", arch, python, wheel_dir, progress=say)
        say(f"package: {'built' if rebuilt else 'unchanged, not rebuilt'}: {info.path} "
            f"({info.zipped_bytes / 2**20:.1f} MB zipped)")
        package_check = doctor.Report()
        doctor._package(info, package_check)
        for finding in package_check.findings:
            say(f"doctor: {finding.line()}")
        package_check.raise_for_blockers("fsd deploy: nothing planned")
        checks.findings.extend(package_check.findings)
        ours = {"package_file": info.path}
    files = project._var_file(ours, var_file)

    say("terraform plan")
    plan = project.plan(files)
    for line in plan.summary():
        say(line)
    result = DeployResult("no changes" if plan.empty else "applied", plan, checks, package=info,
                          package_rebuilt=rebuilt)
    if plan.empty:
        plan.path.unlink(missing_ok=True)
    elif not confirm(plan):
        plan.path.unlink(missing_ok=True)
        raise RunError("not applied: the plan was declined (nothing changed)")
    else:
        say("terraform apply (the plan above)")
        project.apply_plan(plan)
    values = project.output_values()
    manifest = Manifest.from_dict(values, f"terraform output ({project.workdir})")
    manifest.save(deploy_manifest_path())
    result.manifest, result.manifest_path = manifest, str(deploy_manifest_path())
    if info is not None and values.get("package_bucket"):
        from .package import file_sha256

        # main.tf's key for a package_file: packages/<sha256 of the zip>.zip
        result.package_location = f"s3://{values['package_bucket']}/packages/{file_sha256(info.path)}.zip"
    return result


def destroy(*, confirm: Callable[[Plan], bool], delete_packages: bool = False,
            progress: Callable[[str], None] | None = _stderr_progress) -> DeployResult:
    """Plan the destruction of the `fsd deploy` deployment (same backend and variables as its
    last deploy), show what goes, and apply that plan if `confirm(plan)` says yes (else
    RunError, nothing destroyed). `delete_packages`: once confirmed, first delete every version
    in the deployment's package bucket (which Terraform does not delete while it holds
    packages, unless package_force_destroy). Removes the deployment's manifest once destroyed."""
    from .package import delete_packages as empty_package_bucket

    say = progress or (lambda _line: None)
    project = TerraformProject(deploy_dir(), progress=progress, verbose=False)
    if not project.has_state:
        raise InputError(f"{project.workdir}: nothing deployed here (no terraform.tfstate, no recorded backend)")
    say("terraform init")
    project.init()
    files = project._var_file(None, None)
    _keep_package_file(project.workdir)
    say("terraform plan -destroy")
    plan = project.plan(files, destroy=True)
    package_bucket = plan.package_bucket if delete_packages else None
    if package_bucket:
        plan.notes = [f"--delete-packages: every version in the package bucket {package_bucket} is deleted first"]
    elif delete_packages:
        plan.notes.append("--delete-packages: this plan destroys no package bucket of this deployment's")
    elif plan.notes:
        plan.notes[-1] += " (fsd destroy --delete-packages)"
    for line in plan.summary():
        say(line)
    if plan.empty:
        plan.path.unlink(missing_ok=True)
        deploy_manifest_path().unlink(missing_ok=True)
        return DeployResult("nothing to destroy", plan)
    if not confirm(plan):
        plan.path.unlink(missing_ok=True)
        raise RunError("not destroyed: the plan was declined (nothing changed)")
    if package_bucket:
        count = empty_package_bucket(_planned_manifest(plan.variables), package_bucket)
        say(f"deleted {count} object version{'s' if count != 1 else ''} in {package_bucket}")
    say("terraform apply (the destroy plan above)")
    try:
        project.apply_plan(plan)
    except RunError as exc:
        if "BucketNotEmpty" in str(exc) and plan.package_bucket and plan.package_bucket in str(exc):
            raise RunError(f"terraform stopped at the package bucket {plan.package_bucket}: BucketNotEmpty (it keeps "
                           f"the uploaded packages); the rest is destroyed: `fsd destroy --delete-packages` deletes "
                           f"them and finishes (log: {project.workdir / 'terraform-apply.log'})") from exc
        raise
    deploy_manifest_path().unlink(missing_ok=True)
    return DeployResult("destroyed", plan)


def _keep_package_file(workdir: Path) -> None:
    """Terraform evaluates `filesha256(var.package_file)` even in a destroy plan: if the
    package zip `fsd deploy` recorded is gone, put an empty one there (what is destroyed does
    not depend on it). The user's own var file is left alone."""
    try:
        recorded = json.loads((workdir / "fsd.tfvars.json").read_text())
    except (OSError, ValueError):
        return
    package = recorded.get("package_file") if isinstance(recorded, dict) else None
    if package and not Path(package).exists():
        Path(package).parent.mkdir(parents=True, exist_ok=True)
        Path(package).write_bytes(b"")
