"""The servable manager: version states, loading and unloading, labels and request routing.

Re-creates TF Serving's lifecycle (``core/aspired_versions_manager.cc`` with the
availability-preserving policy): each model has a set of *aspired* versions (from its base path
and version policy); one reconcile task per model unloads the lowest un-aspired ready version
when that keeps the model available, and otherwise loads the highest new aspired version. Loads
run on a thread pool through the :class:`Loader` seam, never on the event loop. A failed load is
retried ``max_num_load_retries`` times and then ends in END with its error, never taking traffic.

Status history is kept as TF Serving's state monitor keeps it: unloaded and failed versions stay
listed as END. No TensorFlow import here (the loader owns it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tfserve_magic.serving.models.config import ModelConfig
from tfserve_magic.serving.models.label_rules import label_may_point_at, unavailable_label_message
from tfserve_magic.serving.models.policy import aspired_versions
from tfserve_magic.serving.models.repository import (
    RepositoryError,
    outside_base_path,
    scan_versions,
)
from tfserve_magic.serving.status_errors import (
    Code,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    StatusError,
)
from tfserve_magic.serving.tensor_types import Example, TensorSpec
from tfserve_magic.status import ModelDescription, VersionReport, VersionState, VersionStatus

__all__ = [
    "Loader",
    "Servable",
    "ServableManager",
]

log = logging.getLogger(__name__)


class Servable(Protocol):
    """A loaded model version (``loader.SavedModelServable`` in production)."""

    @property
    def inputs(self) -> Mapping[str, Mapping[str, TensorSpec]]: ...

    @property
    def outputs(self) -> Mapping[str, Mapping[str, TensorSpec]]: ...

    @property
    def method_names(self) -> Mapping[str, str]: ...

    def signature_metadata(self) -> dict[str, Any]: ...

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def serialize_examples(self, context: Example | None,
                           examples: list[Example]) -> np.ndarray: ...


class Loader(Protocol):
    """The seam between lifecycle and TensorFlow: turn a version folder into a servable."""

    def load(self, path: str) -> Servable: ...


# wrap(model, version, path, servable) -> the servable requests get (batching wraps it here)
Wrapper = Callable[[str, int, str, Servable], Servable]


@dataclass
class _Harness:
    version: int
    path: str
    state: VersionState = VersionState.START
    servable: Servable | None = None
    attempts: int = 0
    retry_at: float | None = None  # monotonic time of the next attempt after a failure
    error: StatusError | None = None  # the last failure


@dataclass
class _Model:
    config: ModelConfig
    aspired: set[int] = field(default_factory=set)
    paths: dict[int, str] = field(default_factory=dict)
    harnesses: dict[int, _Harness] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    wanted: bool = True  # False once removed from the config: unload everything


class ServableManager:
    """Owns every model's versions. All mutation happens on the event loop."""

    def __init__(self, loader: Loader, load_executor: Executor, *, max_load_retries: int = 5,
                 load_retry_interval: float = 60.0,
                 allow_labels_for_unavailable: bool = False,
                 on_load: Any = None, wrap: Wrapper | None = None) -> None:
        self._loader = loader
        self._executor = load_executor
        self._retries = max_load_retries
        self._retry_interval = load_retry_interval
        self._allow_unavailable_labels = allow_labels_for_unavailable
        self._on_load = on_load  # callback(model, version, ok: bool) for metrics
        self._wrap = wrap
        self._models: dict[str, _Model] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._status: dict[str, dict[int, VersionStatus]] = {}

    # ------------------------------------------------------------------ configuration

    @property
    def model_names(self) -> list[str]:
        return sorted(n for n, m in self._models.items() if m.wanted)

    def config_of(self, name: str) -> ModelConfig | None:
        """The config of a model in the current config list (None for any other name)."""
        model = self._models.get(name)
        return model.config if model is not None and model.wanted else None

    def configs(self) -> list[ModelConfig]:
        return [self._models[n].config for n in self.model_names]

    def apply_config(self, models: Iterable[ModelConfig], *, initial: bool = False) -> None:
        """Realise exactly this model list (ReloadConfig). Labels are checked last; a label
        error raises FailedPrecondition after the model changes took effect, as TF Serving."""
        new = {m.name: m for m in models}
        for name, model in self._models.items():
            if name not in new and model.wanted:
                log.info("Model %s removed from the config: unloading its versions", name)
                model.wanted = False
                model.aspired = set()
                self._kick(name)
        for name, config in new.items():
            existing = self._models.get(name)
            if existing is None or not existing.wanted:
                self._models[name] = _Model(config)
                log.info("Adding model %s from %s", name, config.base_path)
            else:
                existing.config = config
            self.rescan(name)
        self.update_labels({m.name: dict(m.labels) for m in new.values()}, initial=initial)

    def update_labels(self, wanted: Mapping[str, Mapping[str, int]], *, initial: bool = False) -> None:
        """UpdateModelVersionLabelMap: all or nothing."""
        for model, labels in sorted(wanted.items()):
            current = self._labels.get(model, {})
            for label, version in sorted(labels.items()):
                if not label_may_point_at(
                        available=self._is_available(model, version),
                        allow_unavailable=self._allow_unavailable_labels,
                        current=current.get(label), version=version, initial=initial):
                    raise FailedPrecondition(unavailable_label_message(model, version))
        self._labels = {m: dict(labels) for m, labels in wanted.items() if labels}

    def labels(self, model: str) -> dict[str, int]:
        return dict(self._labels.get(model, {}))

    def rescan(self, name: str) -> None:
        """Re-list the model's base path and update its aspired versions."""
        model = self._models.get(name)
        if model is None or not model.wanted:
            return
        try:
            paths = scan_versions(model.config.base_path)
        except RepositoryError as exc:
            log.error("%s (model %s); keeping its current versions", exc, name)
            return
        model.paths = paths
        aspired = aspired_versions(model.config.policy, paths, name)
        if not paths:
            log.warning("No versions of servable %s found under base path %s",
                        name, model.config.base_path)
        if aspired != model.aspired:
            log.info("Model %s: aspired versions %s", name, sorted(aspired, reverse=True))
        model.aspired = aspired
        self._kick(name)

    def rescan_all(self) -> None:
        for name in list(self._models):
            self.rescan(name)

    # ------------------------------------------------------------------ lifecycle

    def _kick(self, name: str) -> None:
        model = self._models.get(name)  # a retry's timer may outlive a removed model
        if model is None:
            return
        if model.task is None or model.task.done():
            model.task = asyncio.get_running_loop().create_task(self._reconcile(name))

    async def _reconcile(self, name: str) -> None:
        model = self._models[name]
        while True:
            for version, harness in list(model.harnesses.items()):
                if version not in model.aspired and harness.retry_at is not None:
                    log.info("Cancelling load retries of %s version %d: no longer aspired",
                             name, version)
                    self._give_up(name, harness)
                if version not in model.aspired and harness.state is VersionState.END:
                    del model.harnesses[version]  # FlushServables: forget disabled/errored
            ready_unaspired = sorted(
                v for v, h in model.harnesses.items()
                if v not in model.aspired and h.state is VersionState.AVAILABLE)
            aspired_ready = any(h.state is VersionState.AVAILABLE
                                for v, h in model.harnesses.items() if v in model.aspired)
            if ready_unaspired and (not model.aspired or aspired_ready or len(ready_unaspired) > 1):
                self._unload(name, model.harnesses[ready_unaspired[0]])
                continue
            fresh = sorted((v for v in model.aspired if v not in model.harnesses), reverse=True)
            if fresh:
                harness = model.harnesses[fresh[0]] = _Harness(fresh[0], model.paths[fresh[0]])
                self._publish(name, harness.version, VersionState.START)
                await self._attempt(name, model, harness)
                continue
            # A broken version waits for its retry without holding the model's loop: a newer
            # version found meanwhile loads first (above).
            now = time.monotonic()
            due = sorted((v for v, h in model.harnesses.items()
                          if h.retry_at is not None and h.retry_at <= now), reverse=True)
            if due:
                await self._attempt(name, model, model.harnesses[due[0]])
                continue
            break
        if not model.wanted and not model.harnesses:
            del self._models[name]

    def _publish(self, name: str, version: int, state: VersionState,
                 error: StatusError | None = None) -> None:
        status = self._status.setdefault(name, {})
        status[version] = VersionStatus(version, state, error.code if error else Code.OK,
                                        self._public(name, error.message) if error else "")

    def _public(self, name: str, message: str) -> str:
        """A load error as the status API shows it: the model's folder named, not its path."""
        model = self._models.get(name)
        if model is None or "://" in model.config.base_path:
            return message
        base = model.config.base_path.rstrip("/")
        return message.replace(base, f"<base_path of {name}>")

    async def _attempt(self, name: str, model: _Model, harness: _Harness) -> None:
        """One load attempt: LOADING, then AVAILABLE, or a failure (``_failed``)."""
        version, path = harness.version, harness.path
        harness.attempts += 1
        harness.retry_at = None
        if harness.attempts > 1:
            log.info("Retrying load of servable %s version %d (retry %d of %d)",
                     name, version, harness.attempts - 1, self._retries)
        harness.state = VersionState.LOADING
        self._publish(name, version, VersionState.LOADING, harness.error)
        started = time.monotonic()
        try:
            self._refuse_escape(name, model, harness)
            servable = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._load_servable, name, version, path)
        except Exception as exc:  # any failure of a user's model must not stop the server
            self._failed(name, model, harness, exc if isinstance(exc, StatusError) else
                         StatusError(f"{exc}" or type(exc).__name__, Code.UNKNOWN))
            return
        harness.servable = servable
        harness.state = VersionState.AVAILABLE
        harness.error = None
        self._publish(name, version, VersionState.AVAILABLE)
        log.info("Successfully loaded servable version {name: %s version: %d} in %.2f s",
                 name, version, time.monotonic() - started)
        if self._on_load:
            self._on_load(name, version, True)

    def _refuse_escape(self, name: str, model: _Model, harness: _Harness) -> None:
        """A version folder linking outside the base path is never loaded, nor retried."""
        escape = outside_base_path(model.config.base_path, harness.path)
        if escape is None:
            return
        log.error("Version folder %s of model %s links to %s, outside its base path; "
                  "not loading it", harness.path, name, escape)
        harness.attempts = 1 + self._retries  # nothing a retry could change
        raise FailedPrecondition(
            f"Version folder {harness.version} of model {name} is a link to a folder outside "
            "the model's base path; refusing to load it")

    def _failed(self, name: str, model: _Model, harness: _Harness, error: StatusError) -> None:
        """After a failed attempt: schedule the next (``max_num_load_retries``) while the
        version is still aspired, else give up (END with the error)."""
        log.error("Loading servable %s version %d from %s failed: %s",
                  name, harness.version, harness.path, error.message)
        harness.error = error
        if harness.attempts > self._retries or harness.version not in model.aspired:
            self._give_up(name, harness)
            return
        # Still LOADING, and the status says why and what comes next.
        harness.retry_at = time.monotonic() + self._retry_interval
        self._publish(name, harness.version, VersionState.LOADING, StatusError(
            f"{error.message} (attempt {harness.attempts} of {1 + self._retries} "
            f"failed; retrying in {self._retry_interval:g} s)", error.code))
        asyncio.get_running_loop().call_later(self._retry_interval, self._kick, name)

    def _give_up(self, name: str, harness: _Harness) -> None:
        harness.retry_at = None
        harness.state = VersionState.END
        self._publish(name, harness.version, VersionState.END,
                      harness.error or StatusError("Load cancelled", Code.CANCELLED))
        if self._on_load:
            self._on_load(name, harness.version, False)

    def _load_servable(self, name: str, version: int, path: str) -> Servable:
        servable = self._loader.load(path)
        return self._wrap(name, version, path, servable) if self._wrap else servable

    def _unload(self, name: str, harness: _Harness) -> None:
        # In-flight requests keep their own reference to the servable; dropping ours is enough
        # (a batching servable also lets its queued requests run at once, dropping none).
        self._publish(name, harness.version, VersionState.UNLOADING)
        close = getattr(harness.servable, "close", None)
        if close is not None:
            close()
        harness.servable = None
        harness.state = VersionState.END
        self._publish(name, harness.version, VersionState.END)
        log.info("Unloaded servable version {name: %s version: %d}", name, harness.version)

    async def wait_idle(self) -> None:
        """Wait until no model has reconcile work in flight or a load retry pending."""
        while True:
            tasks = [m.task for m in self._models.values() if m.task and not m.task.done()]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
                continue
            retries = [h.retry_at for m in self._models.values() for h in m.harnesses.values()
                       if h.retry_at is not None]
            if not retries:
                return
            # The retry's own timer (call_later, scheduled earlier) fires first and starts work.
            await asyncio.sleep(max(0.0, min(retries) - time.monotonic()) + 0.001)

    async def wait_models(self, names: Iterable[str]) -> None:
        """Wait until these models' pending loads finished (WaitUntilModelsAvailable)."""
        tasks = [m.task for n in names if (m := self._models.get(n)) and m.task and not m.task.done()]
        await asyncio.gather(*tasks, return_exceptions=True)

    def unload_all(self) -> None:
        for name, model in self._models.items():
            for harness in model.harnesses.values():
                if harness.state is VersionState.AVAILABLE:
                    self._unload(name, harness)

    # ------------------------------------------------------------------ routing and status

    def _is_available(self, name: str, version: int) -> bool:
        model = self._models.get(name)
        harness = model.harnesses.get(version) if model else None
        return bool(harness and harness.state is VersionState.AVAILABLE)

    def resolve_version(self, name: str, version: int | None = None,
                        label: str | None = None) -> int | None:
        """Turn a label into its version; None means Latest."""
        if label is not None:
            labels = self._labels.get(name, {})
            if label not in labels:
                raise InvalidArgument(f"Unrecognized servable version label: {label}")
            return labels[label]
        return version

    def servable(self, name: str, version: int | None = None,
                 label: str | None = None) -> tuple[int, Servable]:
        """The servable a request goes to (``ServableRequestFromModelSpec``)."""
        version = self.resolve_version(name, version, label)
        model = self._models.get(name)
        if version is None:
            ready = [(v, h.servable) for v, h in (model.harnesses.items() if model else ())
                     if h.state is VersionState.AVAILABLE and h.servable is not None]
            if not ready:
                raise NotFound(f"Servable not found for request: Latest({name})")
            return max(ready, key=lambda item: item[0])
        harness = model.harnesses.get(version) if model else None
        if harness is None or harness.state is not VersionState.AVAILABLE or harness.servable is None:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return version, harness.servable

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """GetModelStatus: highest version first, END entries included."""
        entries = self._status.get(name, {})
        if not entries:
            raise NotFound(f"Could not find any versions of model {name}")
        if version is not None:
            if version not in entries:
                raise NotFound(f"Could not find version {version} of model {name}")
            return [entries[version]]
        return [entries[v] for v in sorted(entries, reverse=True)]

    def describe(self) -> tuple[ModelDescription, ...]:
        """Every configured model with its labels and version states (contract 2)."""
        out = []
        for name in self.model_names:
            config = self._models[name].config
            statuses = self._status.get(name, {})
            out.append(ModelDescription(
                name=name, base_path=config.base_path, policy=config.policy.describe(),
                labels=self.labels(name),
                versions=tuple(VersionReport(v, statuses[v].state, statuses[v].error_message)
                               for v in sorted(statuses, reverse=True))))
        return tuple(out)
