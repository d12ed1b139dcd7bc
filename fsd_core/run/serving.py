"""Deployed models: a model's shards uploaded once per (model, plan), queried many times.

A run on a model it is given plans (cached), splits the model into the workers' shards,
stages them under `stage/{run}/` and deletes them at the end: for a large model staging costs
more than the inference. A deployed model keeps its shards in a store of their own, under a
content-addressed id (the model's fingerprint and the plan's digest, a digest of the shards'
bytes), so a query stages only its inputs and a second deploy of the same model and plan
writes nothing. The cloud variants keep the store in the deployment bucket
(`models/<id>/`, which the workers may only read); the `local` variant in the data
directory (`models/<id>`). `deployment.json` is written last: a store without it is not a
deployed model (an interrupted deploy is simply redone).

This machine's registry (`deployed.json` in the data directory, 0600) maps the names that
`fsd run --deployed NAME` takes to ids and where their store is (the bucket and endpoint of a
cloud store); a query first checks that the store still holds `deployment.json`, so a store
that is gone (an emulator that restarted, a bucket emptied) is reported, not used. Every
change to the registry, and a deploy's or undeploy's check of who uses a store, happens under
the registry's lock (`fileio.held`): concurrent deploys lose no name, and an undeploy never
deletes a store another deploy is registering.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.event import DEPLOYED_ID
from ..engine.payloads import shard_key, shards_digest
from ..engine.stage import DirectoryStage, Stage
from ..errors import InputError, RunError
from ..fileio import atomic_write_text, held
from ..model.network import SparseDNN
from ..paths import data_dir
from .plans import cached_plan, model_fingerprint

FORMAT = "fsd-deployment"
VERSION = 1
DOCUMENT_KEY = "deployment.json"
OWNERS_KEY = "input-owners.fsda"
#: Names an operator gives a deployed model (and `fsd run --deployed` takes).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Variants and the store their workers read a deployed model's shards from.
STORES = {"local": "directory", "queue": "s3", "object": "s3"}


@dataclass
class Deployment:
    """A deployed model: where its shards are and what a query needs to know of it (sizes, the
    plan's input owners) without loading the model."""

    name: str
    id: str               # "<model fingerprint>-<plan digest>": the store's content address
    store: str            # "directory" (local variant) or "s3" (queue, object)
    workers: int
    method: str
    per_layer: bool
    seed: int
    neurons: int
    layers: int
    nnz: int
    model_name: str
    model_path: str | None
    shard_bytes: list[int] = field(default_factory=list)
    deployed_at: float = 0.0
    bucket: str | None = None    # a cloud store's bucket and endpoint (None: AWS's), where it lives
    endpoint: str | None = None

    @property
    def plan_digest(self) -> str:
        return self.id.split("-", 1)[1]

    @property
    def size(self) -> int:
        """Bytes of its shards in the store."""
        return sum(self.shard_bytes)

    def serves(self, variant: str) -> bool:
        return STORES.get(variant) == self.store

    @property
    def variants(self) -> str:
        """The variants whose workers read its store."""
        return "local" if self.store == "directory" else "queue or object"

    def check_query(self, variant: str, workers: int | None) -> None:
        """Refuse a query it cannot serve: another variant's store, or another P (None: its own)."""
        if not self.serves(variant):
            raise InputError(f"--deployed {self.name} was deployed for {self.variants}, not --variant {variant}")
        if workers not in (None, self.workers):
            raise InputError(f"--deployed {self.name} has {self.workers} workers, not --workers {workers}")

    @property
    def where(self) -> str:
        """Where its store is, for messages."""
        if self.store == "directory":
            return "the data directory"
        return f"bucket {self.bucket}" + (f" at {self.endpoint}" if self.endpoint else "") if self.bucket \
            else "the deployment bucket"

    def same_store(self, other: Deployment) -> bool:
        """The same shards in the same place (a record without a bucket, written before records
        named it, matches any bucket: it may be the same)."""
        if (self.id, self.store) != (other.id, other.store):
            return False
        return self.bucket is None or other.bucket is None or (self.bucket, self.endpoint) == (other.bucket,
                                                                                                 other.endpoint)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> Deployment:
        try:
            d = cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})
        except (TypeError, KeyError) as exc:
            raise InputError(f"{where}: not a deployed model's record ({exc})") from None
        if not isinstance(d.id, str) or not DEPLOYED_ID.match(d.id) \
                or d.store not in ("directory", "s3"):
            raise InputError(f"{where}: not a deployed model's record (id or store)")
        return d


@dataclass
class DeployOutcome:
    """What `deploy_model` did: the deployment, and what it wrote (nothing for a redeploy)."""

    deployment: Deployment
    staged_bytes: int
    requests: dict[str, int]
    already_deployed: bool
    seconds: float
    object_bytes: list[int]  # the store's objects: shards, input owners, the document

    def cost(self) -> Any:
        """The one-time dollars of this deploy and the monthly cost of keeping it (`cost.model`),
        as on AWS: the local directory store is priced as S3."""
        from ..cost.model import deploy_cost

        return deploy_cost(self.object_bytes, self.already_deployed, check_api="s3:GetObject")

    def summary(self) -> dict[str, Any]:
        """The `fsd model deploy --json` document (command line contract: name, staged_bytes)."""
        d = self.deployment
        return {"name": d.name, "id": d.id, "store": d.store, "workers": d.workers, "partition": d.method,
                "staged_bytes": self.staged_bytes, "size_bytes": d.size, "requests": self.requests,
                "already_deployed": self.already_deployed, "seconds": self.seconds,
                "neurons": d.neurons, "layers": d.layers, "cost": self.cost().as_dict()}


def registry_path() -> Path:
    return data_dir() / "deployed.json"


def _registry() -> dict[str, dict[str, Any]]:
    path = registry_path()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: the deployed-models registry is unreadable ({exc}); remove it "
                         f"and deploy again") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: the deployed-models registry is not a JSON object; remove it")
    return doc


def _save_registry(entries: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(registry_path(), json.dumps(entries, indent=1, sort_keys=True) + "\n", mode=0o600)


@contextmanager
def _registry_held() -> Iterator[None]:
    """The registry's lock: one deploy or undeploy at a time reads, checks and writes it."""
    with held(registry_path().with_name("deployed.lock")):
        yield


def check_name(name: str) -> str:
    """`name` if it is one an operator may give a deployed model, else InputError."""
    if not NAME.match(name):
        raise InputError(f"--name {name!r}: letters, digits, '.', '_' and '-' (up to 64, starting with a "
                         f"letter or digit)")
    return name


def deployed() -> list[Deployment]:
    """The models deployed from this machine, by name."""
    return [Deployment.from_dict(doc, f"{registry_path()}: {name}") for name, doc in sorted(_registry().items())]


def find(name: str) -> Deployment:
    """The deployed model `name` (InputError naming the ones there are)."""
    entry = _registry().get(name)
    if entry is None:
        names = ", ".join(sorted(_registry())) or "none (fsd model deploy)"
        raise InputError(f"--deployed {name}: no deployed model of that name; deployed: {names}")
    return Deployment.from_dict(entry, f"{registry_path()}: {name}")


def open_store(deployment: Deployment | str, store: str, manifest: dict[str, Any] | None) -> Stage:
    """The store of a deployed model's shards: `models/<id>/` of the deployment bucket, or the
    data directory's `models/<id>` for the local variant."""
    ident = deployment if isinstance(deployment, str) else deployment.id
    if store == "directory":
        return DirectoryStage(data_dir() / "models" / ident)
    from ..engine.s3_stage import S3Stage

    if manifest is None:
        raise InputError("a deployed model in S3 needs the deployment's manifest")
    return S3Stage(manifest, f"models/{ident}/")


def check_stored(deployment: Deployment, store: Stage) -> None:
    """Refuse a deployed model whose store lost it (an emulator restarted, a bucket emptied)."""
    bucket = getattr(getattr(store, "manifest", None), "bucket", None)
    if deployment.bucket and bucket and bucket != deployment.bucket:
        raise InputError(f"--deployed {deployment.name} is in {deployment.where}, not in this run's deployment "
                         f"(bucket {bucket}): run with that deployment's --manifest, or deploy it here")
    raw = store.get(DOCUMENT_KEY)
    if raw is None:
        where = "this deployment's bucket" if deployment.store == "s3" else "the data directory"
        raise InputError(f"--deployed {deployment.name}: its shards are not in {where} (models/{deployment.id}); "
                         f"deploy it again: fsd model deploy")


def input_owners(store: Stage, deployment: Deployment) -> np.ndarray:
    """owners[0] of the deployed plan: which worker holds each input feature."""
    from .. import packed

    raw = store.get(OWNERS_KEY)
    if raw is None:
        raise InputError(f"--deployed {deployment.name}: the store has no input owners; deploy it again")
    damaged = InputError(f"--deployed {deployment.name}: its input owners are damaged; deploy it again")
    try:
        owners = packed.unpack(raw).get("owners0")
    except (packed.PackError, ValueError):
        raise damaged from None
    if not isinstance(owners, np.ndarray) or owners.dtype.kind not in "iu" or owners.shape != (deployment.neurons,) \
            or owners.min(initial=0) < 0 or owners.max(initial=0) >= deployment.workers:
        raise damaged
    return owners


def deploy_model(model: SparseDNN, model_path: str | None, workers: int, variant: str, method: str | None,
                 per_layer: bool | None, seed: int, manifest: dict[str, Any] | None, name: str | None = None,
                 progress: Callable[[str], None] | None = None) -> DeployOutcome:
    """Plan (cached), split and store the shards once; register `name` for them."""
    from .. import packed

    started = time.perf_counter()
    say = progress or (lambda _line: None)
    if variant not in STORES:
        raise InputError(f"--variant {variant}: a model is deployed for local, queue or object")
    if name is not None:
        check_name(name)  # before the plan, which can take minutes
    say(f"planning ({method or 'default'}, {workers} workers; cached)")
    plan = cached_plan(model, workers, method, per_layer, seed)
    say("splitting the model into the workers' shards")
    blobs = [shard.to_bytes() for shard in plan.shards(model)]
    ident = f"{model_fingerprint(model)}-{shards_digest(blobs)}"
    name = check_name(name or default_name(model_path, model, workers, plan.method))
    cloud = STORES[variant] == "s3" and manifest is not None
    deployment = Deployment(name, ident, STORES[variant], workers, plan.method, plan.per_layer, seed,
                            model.neurons, model.layers, model.nnz, model.name,
                            str(Path(model_path).resolve()) if model_path else None,
                            [len(b) for b in blobs], time.time(),
                            manifest.get("bucket") if cloud else None, manifest.get("endpoint") if cloud else None)
    store = open_store(deployment, deployment.store, manifest)
    before = dict(getattr(store, "requests", {}))
    staged = 0
    owners = packed.pack({"owners0": plan.owners[0].astype(np.int32)})
    document = json.dumps(dict(deployment.to_dict(), format=FORMAT, version=VERSION)).encode()
    with _registry_held():  # (an undeploy of the same store waits: it must see this name)
        entries = _registry()
        if name in entries:
            held_by = Deployment.from_dict(entries[name], f"{registry_path()}: {name}")
            if not held_by.same_store(deployment):
                raise InputError(f"--name {name}: already names another deployed model (models/{held_by.id} in "
                                 f"{held_by.where}); undeploy it first (fsd model undeploy {name}) or choose "
                                 f"another --name")
        already = store.get(DOCUMENT_KEY) is not None
        if not already:
            say(f"uploading {len(blobs)} shards ({sum(deployment.shard_bytes):,} bytes)")
            for p, blob in enumerate(blobs):
                store.put(shard_key(p), blob)
            store.put(OWNERS_KEY, owners)
            store.put(DOCUMENT_KEY, document)  # last: the store is complete
            staged = sum(deployment.shard_bytes) + len(owners) + len(document)
        entries[name] = deployment.to_dict()
        _save_registry(entries)
    requests = {api: n - before.get(api, 0) for api, n in getattr(store, "requests", {}).items()
                if n - before.get(api, 0)}
    return DeployOutcome(deployment, staged, requests, already, time.perf_counter() - started,
                         deployment.shard_bytes + [len(owners), len(document)])


def default_name(model_path: str | None, model: SparseDNN, workers: int, method: str) -> str:
    """`<model directory>-p<P>-<method>`, cut to a valid name."""
    base = Path(model_path).name if model_path else (model.name or "model")
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._") or "model"
    return f"{base[:40]}-p{workers}-{method}"


def undeploy(name: str, manifest: dict[str, Any] | None, delete: bool = True) -> Deployment:
    """Forget `name`; delete its shards unless another name still uses them (or `delete` is
    False: their store is gone, as a stopped emulator's bucket). The document goes first, so a
    store whose deletion stopped half-way is no longer a deployed model; the name is dropped
    only once its store is deleted (RunError, one line, and the name kept, if it cannot be)."""
    with _registry_held():
        deployment = find(name)
        entries = _registry()
        del entries[name]
        shared = any(Deployment.from_dict(e, f"{registry_path()}: {other}").same_store(deployment)
                     for other, e in entries.items())
        if delete and not shared:
            store = open_store(deployment, deployment.store, manifest)
            try:
                store.delete(DOCUMENT_KEY)
                store.delete_all()
                if isinstance(store, DirectoryStage) and store.root.exists():  # (its rmtree says nothing)
                    raise OSError(f"{store.root} is still there")
            except (OSError, RunError) as exc:
                raise RunError(f"model {name}: its shards could not be deleted ({exc}); the name is kept: "
                               f"run fsd model undeploy {name} again") from None
        _save_registry(entries)
    return deployment
