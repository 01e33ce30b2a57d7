"""Asynchronous deploys: the Metadata API deploy state machine of one org.

``deploy()`` answers at once with a Queued AsyncResult; the deploy then waits its turn
(``Pending``: an org runs one deploy at a time), runs (``InProgress`` for ``run_seconds``,
with numberComponentsDeployed / numberComponentErrors and ``stateDetail`` moving so progress
displays have something to follow), and ends ``Succeeded``, ``SucceededPartial``, ``Failed``
or ``Canceled``. Time is the org clock, so a test that advances the clock moves deploys too.

Components are validated against a schema clone when the deploy starts; changes reach the
org only when it completes, and only when it is not checkOnly and nothing failed (or
rollbackOnError is false, then the components that validated are applied). A production org
always rolls back on error, as Salesforce does.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from lc_console.sandbox.salesforce import ids
from lc_console.sandbox.salesforce.metadata_deploy import (
    DeployMessage,
    DeployOptions,
    Plan,
    ValidationTarget,
    plan_deploy,
    run_step,
)

if TYPE_CHECKING:
    from lc_console.sandbox.salesforce.org import Org

TERMINAL = ("Succeeded", "SucceededPartial", "Failed", "Canceled")
# How long a deploy waits in the queue and runs, on the org clock. Short by default so
# tests and the demo move quickly; long enough for a progress display to show steps.
DEFAULT_QUEUE_SECONDS = 0.2
DEFAULT_RUN_SECONDS = 1.0
TICK_SECONDS = 0.05


@dataclass
class DeployJob:
    id: str
    created_by: str
    created_by_name: str
    options: DeployOptions
    zip_data: bytes
    created: datetime
    last_modified: datetime
    status: str = "Pending"
    started: datetime | None = None
    completed: datetime | None = None
    started_at: float = 0.0  # org clock seconds when InProgress began
    queued_at: float = 0.0
    plan: Plan | None = None
    validated: list[DeployMessage] = field(default_factory=list)
    messages: list[DeployMessage] = field(default_factory=list)  # final details
    package_message: DeployMessage | None = None
    state_detail: str | None = None
    error_message: str | None = None
    error_status_code: str | None = None
    canceled_by: str | None = None
    canceled_by_name: str | None = None
    cancel_requested: bool = False

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def success(self) -> bool:
        return self.status == "Succeeded"

    @property
    def total(self) -> int:
        return len(self.validated)

    def progress(self, now: float, run_seconds: float) -> tuple[list[DeployMessage], int, int]:
        """(messages so far, deployed, errors) at org time `now`."""
        if self.done:
            shown = self.messages
        elif self.status == "InProgress" and run_seconds > 0:
            fraction = min(1.0, max(0.0, (now - self.started_at) / run_seconds))
            shown = self.validated[: math.floor(fraction * len(self.validated))]
        else:
            shown = []
        errors = sum(1 for m in shown if not m.success)
        return shown, len(shown) - errors, errors


class DeployQueue:
    """The deploys of one org. Thread-safe; a worker thread drives them while any is active."""

    def __init__(self, org: Org, queue_seconds: float = DEFAULT_QUEUE_SECONDS,
                 run_seconds: float = DEFAULT_RUN_SECONDS):
        self.org = org
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.jobs: dict[str, DeployJob] = {}
        # called with the messages of each deploy that changed the org (under the org lock)
        self.on_applied: Callable[[list[DeployMessage]], None] | None = None
        self.lock = threading.RLock()
        self._worker: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- API ------------------------------------------------------------------------------
    def submit(self, user_id: str, user_name: str, zip_data: bytes,
               options: DeployOptions) -> DeployJob:
        now = self.org.clock.now()
        if not _is_sandbox(self.org):
            options.rollback_on_error = True
        job = DeployJob(id=ids.new_id("0Af"), created_by=user_id[:15], created_by_name=user_name,
                        options=options, zip_data=zip_data, created=now, last_modified=now,
                        queued_at=self.org.clock.time())
        with self.lock:
            self.jobs[job.id] = job
            self._ensure_worker()
        return job

    def get(self, job_id: str) -> DeployJob | None:
        self.advance()
        with self.lock:
            rid = ids.try_normalize(job_id)
            return self.jobs.get(rid) if rid else None

    def cancel(self, job_id: str, user_id: str, user_name: str) -> DeployJob | None:
        with self.lock:
            job = self.get(job_id)
            if job is None or job.done:
                return job
            job.canceled_by, job.canceled_by_name = user_id[:15], user_name
            if job.status == "Pending":
                self._finish(job, "Canceled")
            else:
                job.cancel_requested = True
                job.status = "Canceling"
            return job

    # -- state machine --------------------------------------------------------------------
    def advance(self) -> None:
        """Move every deploy along to the current org time."""
        with self.lock:
            now = self.org.clock.time()
            running = [j for j in self.jobs.values() if j.status in ("InProgress", "Canceling")]
            for job in running:
                if now >= job.started_at + self.run_seconds:
                    if job.cancel_requested:
                        self._finish(job, "Canceled")
                    else:
                        self._complete(job)
                else:
                    self._update_detail(job, now)
            if any(j.status in ("InProgress", "Canceling") for j in self.jobs.values()):
                return
            pending = sorted((j for j in self.jobs.values() if j.status == "Pending"),
                             key=lambda j: j.queued_at)
            if pending and now >= pending[0].queued_at + self.queue_seconds:
                self._start(pending[0], now)
                if self.run_seconds <= 0:
                    self.advance()

    def active(self) -> bool:
        with self.lock:
            return any(not j.done for j in self.jobs.values())

    def _start(self, job: DeployJob, now: float) -> None:
        job.status = "InProgress"
        job.started_at = now
        job.started = job.last_modified = self.org.clock.now()
        with self.org.lock:
            target = ValidationTarget(self.org.schema.clone())
            job.plan = plan_deploy(job.zip_data, job.options, target)
            if job.plan.manifest_problem is not None:
                job.package_message = job.plan.manifest_problem
                job.package_message.created_date = job.started
                self._finish(job, "Failed")
                return
            failed: set[str] = set()
            job.validated = [run_step(step, target, failed, job.started)
                             for step in job.plan.steps]
        self._update_detail(job, now)

    def _update_detail(self, job: DeployJob, now: float) -> None:
        if job.plan is None or not job.plan.steps:
            return
        fraction = min(1.0, max(0.0, (now - job.started_at) / self.run_seconds)) \
            if self.run_seconds > 0 else 1.0
        index = min(len(job.plan.steps) - 1, math.floor(fraction * len(job.plan.steps)))
        job.state_detail = f"Processing Type: {job.plan.steps[index].component_type}"

    def _complete(self, job: DeployJob) -> None:
        failures = sum(1 for m in job.validated if not m.success)
        successes = len(job.validated) - failures
        rollback = job.options.rollback_on_error
        apply = not job.options.check_only and (failures == 0 or not rollback) and successes > 0
        if failures == 0:
            status = "Succeeded"
        elif rollback or successes == 0:
            status = "Failed"
        else:
            status = "SucceededPartial"
        job.messages = self._apply(job) if apply else list(job.validated)
        self._finish(job, status)

    def _apply(self, job: DeployJob) -> list[DeployMessage]:
        assert job.plan is not None
        when = self.org.clock.now()
        out: list[DeployMessage] = []
        failed: set[str] = set()
        with self.org.lock:
            for step, checked in zip(job.plan.steps, job.validated, strict=True):
                if not checked.success:
                    out.append(checked)
                    continue
                out.append(run_step(step, self.org, failed, when))
            self.org.invalidate_access()
            if self.on_applied is not None:
                self.on_applied(out)
        return out

    def _finish(self, job: DeployJob, status: str) -> None:
        job.status = status
        job.completed = job.last_modified = self.org.clock.now()
        job.state_detail = None
        job.zip_data = b""  # keep memory small once the deploy is over

    # -- worker ---------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._stopped.is_set() or (self._worker is not None and self._worker.is_alive()):
            return
        self._worker = threading.Thread(target=self._run, name="sf-sandbox-deploys", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Stop driving deploys (the sandbox is shutting down)."""
        self._stopped.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=2)

    def _run(self) -> None:
        while not self._stopped.wait(TICK_SECONDS):
            try:
                self.advance()
            except Exception:  # a broken deploy must not kill the worker for the next ones
                with self.lock:
                    for job in self.jobs.values():
                        if job.status in ("InProgress", "Canceling"):
                            job.error_message = "An unexpected error occurred. Please retry."
                            job.error_status_code = "UNKNOWN_EXCEPTION"
                            self._finish(job, "Failed")
            with self.lock:
                if not self.active():
                    self._worker = None
                    return


def _is_sandbox(org: Org) -> bool:
    rows = org.records("Organization")
    return bool(rows and rows[0].get("IsSandbox"))

