"""Terraform through python-terraform: init (offline, from a provider mirror), apply, destroy,
outputs. The outputs of the root module (terraform/outputs.tf) are the deployment manifest.

A :class:`TerraformProject` is a working directory holding a copy of the root module (copied
afresh before each command, so the state never lands in the source tree) and its local
state. `fsd deploy` uses ``<data dir>/deploy``; `fsd local up` uses ``<data dir>/local/terraform``
with the provider pointed at the emulator.

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
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, IsNotFlagged, Terraform

from ..errors import InputError, RunError
from ..fileio import atomic_write_text
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
            proc = subprocess.Popen(argv, cwd=self.working_dir, env=self._env, text=True,
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


class TerraformProject:
    """One Terraform working directory: a copy of the root module plus its local state."""

    def __init__(self, workdir: str | os.PathLike[str], env: dict[str, str] | None = None,
                 progress: Callable[[str], None] | None = None, verbose: bool = True) -> None:
        """`progress` receives output lines: all of them if `verbose`, else a summary."""
        self.workdir = Path(workdir)
        self.progress = progress
        self.verbose = verbose
        self._extra_env = dict(env or {})

    # -- plumbing

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

    def _stage(self) -> None:
        """Replace the module copy in the working dir, keeping state and .terraform/."""
        source = terraform_source_dir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for old in self.workdir.glob("*.tf"):
            old.unlink()
        shutil.rmtree(self.workdir / "modules", ignore_errors=True)
        shutil.copytree(source, self.workdir, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl",
                                                      "*.tfstate*", "*.tfvars*", "README.md"))

    def _terraform(self) -> _StreamingTerraform:
        return _StreamingTerraform(str(self.workdir), self._environment(), self.progress,
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
        if var_file is not None:
            path = Path(var_file).expanduser().resolve()
            if not path.is_file():
                raise InputError(f"{var_file}: no such var file")
            files.append(str(path))
            atomic_write_text(self.workdir / "user.tfvars.path", str(path))
        elif (self.workdir / "user.tfvars.path").exists():
            files.append((self.workdir / "user.tfvars.path").read_text())
        return files

    # -- commands

    def init(self) -> None:
        """Stage the module and `terraform init` (offline when a mirror is found)."""
        self._stage()
        tf = self._terraform()
        self._check("init", tf.init(backend=True, reconfigure=IsNotFlagged, no_color=IsFlagged,
                                    input=False))

    def apply(self, variables: dict[str, Any] | None = None, var_file: str | None = None,
              parallelism: int = 10) -> Manifest:
        """init + apply; returns the manifest from the outputs."""
        if var_file is not None and not Path(var_file).expanduser().is_file():
            raise InputError(f"{var_file}: no such var file")
        if self.progress:
            self.progress("terraform init")
        self.init()
        tf = self._terraform()
        files = self._var_file(variables, var_file)
        if self.progress:
            self.progress("terraform apply")
        self._check("apply", tf.apply(skip_plan=True, var_file=files or None,
                                      parallelism=parallelism))
        return self.outputs()

    def destroy(self, parallelism: int = 10) -> None:
        """init + destroy with the variables of the last apply."""
        if not (self.workdir / "terraform.tfstate").exists():
            raise InputError(f"{self.workdir}: nothing deployed here (no terraform.tfstate)")
        self.init()
        tf = self._terraform()
        files = self._var_file(None, None)
        self._check("destroy", tf.destroy(force=IsNotFlagged, auto_approve=IsFlagged,
                                          var_file=files or None, parallelism=parallelism))

    def outputs(self) -> Manifest:
        """`terraform output -json` as a validated manifest."""
        tf = self._terraform()
        out = self._check("output", tf.cmd("output", json=IsFlagged, no_color=IsFlagged,
                                           stream=False))
        try:
            data = json.loads(out)
        except json.JSONDecodeError as exc:
            raise RunError(f"terraform output -json printed invalid JSON: {exc.msg}") from None
        if not data:
            raise RunError(f"{self.workdir}: terraform has no outputs (nothing applied?)")
        return Manifest.from_terraform_outputs(data, f"terraform output ({self.workdir})")


# --------------------------------------------------------------------------- fsd deploy

def deploy_dir() -> Path:
    """Working directory of `fsd deploy` (AWS)."""
    return data_dir() / "deploy"


def _stderr_progress(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def deploy(var_file: str | None = None,
           progress: Callable[[str], None] | None = _stderr_progress) -> Manifest:
    """`terraform apply` of the root module (AWS unless the var file sets `endpoint`)."""
    manifest = TerraformProject(deploy_dir(), progress=progress).apply(var_file=var_file)
    manifest.save(deploy_manifest_path())
    return manifest


def destroy(progress: Callable[[str], None] | None = _stderr_progress) -> None:
    """`terraform destroy` of the `fsd deploy` deployment; removes its manifest."""
    TerraformProject(deploy_dir(), progress=progress).destroy()
    deploy_manifest_path().unlink(missing_ok=True)
