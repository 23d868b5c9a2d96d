"""Running: ``why``: the reason each instance of a run was not taken from the cache.

Each instance that ran (or will run) is compared with the most recent earlier instance of the
same task and element in the run directory, using only what the runs recorded: their
manifests (parameters, versions, code hashes, options) and the store (identities, states,
output hashes). Nothing is recomputed from the flow. Reasons are grouped per task, so ten
thousand elements that reran for one reason are one line, and a line that names files names a
few and counts the rest. An element is compared with the same element of an upstream task only
where the run's wiring feeds it 1:1 (a chain); a gather is compared with all of its upstream
elements.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reflow.definition.description import options_from_description
from reflow.definition.errors import UsageError, suggest
from reflow.running.commands.why_changes import (
    Files,
    Reason,
    chain_sources,
    code_change,
    listing,
    output_changes,
    param_changes,
)
from reflow.running.rundir.layout import RunLayout
from reflow.running.rundir.manifest import read_manifest
from reflow.running.rundir.stale import read_stale
from reflow.running.store.sqlite import SqliteStore
from reflow.running.store.states import FINISHED, InstanceState

_ELEMENTS = 10


@dataclass(frozen=True, slots=True)
class _Recorded:
    """What one run recorded about itself: its manifest and its options."""

    run_id: str
    params: Mapping[str, Any]
    tasks: Mapping[str, Mapping[str, Any]]
    code: Mapping[str, str]
    force: bool
    force_tasks: frozenset[str]
    flags: Mapping[str, list[tuple[str, str]]]  # task -> (key, flag) of its own parameters
    chains: Mapping[str, frozenset[str]]  # task -> upstream tasks that feed it 1:1


@dataclass(slots=True)
class _Group:
    reason: str
    detail: str  # with files: their label
    compared_with: str | None
    elements: list[int] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    merged: Files = ()

    def shown(self) -> str:
        return listing(self.detail, self.files) if self.files else self.detail


def explain(root: Path, run_id: str | None, task: str | None = None) -> dict[str, Any]:
    """Why each instance of the run (the latest when ``run_id`` is None) was not cached.

    Raises:
        UsageError: The run or the task does not exist.
    """
    with _Reader(root) as reader:
        return reader.explain(run_id, task)


def write_why(data: Mapping[str, Any], out: IO[str], *, as_json: bool) -> None:
    """Print what ``explain`` found, as a table or as JSON."""
    if as_json:
        out.write(json.dumps(data, indent=2) + "\n")
        return
    tasks = data["tasks"]
    total = sum(t["instances"] for t in tasks)
    out.write(f"run {data['run_id']}: {total} instance(s) not taken from the cache\n")
    width = max((len(t["task"]) for t in tasks), default=0)
    for entry in tasks:
        for group in entry["reasons"]:
            where = f"  (compared with {group['compared_with']})" if group["compared_with"] else ""
            out.write(
                f"  {entry['task']:<{width}}  {group['count']:>6}  {group['reason']}"
                f"{': ' + group['detail'] if group['detail'] else ''}{where}\n"
            )


class _Reader:
    """Reads the store and the runs' manifests once each."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.store = SqliteStore.open(self.root)
        self.recorded: dict[str, _Recorded] = {}
        self.outputs: dict[tuple[str, str], dict[int, tuple[str, str]]] = {}
        self.changes: dict[tuple[str, str, str, int | None], list[Reason]] = {}
        self.answers: dict[tuple[str, str, tuple[int | None, ...]], list[Reason]] = {}
        self.ran_again: dict[tuple[str, str], bool] = {}  # (run, task): not all from the cache

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    def explain(self, run_id: str | None, task: str | None) -> dict[str, Any]:
        run_id = run_id or self.store.latest_run_id()
        this = self.run(run_id)
        names = list(this.tasks)
        if task is not None and task not in this.tasks:
            raise UsageError(
                f"run {run_id} has no task {task!r}",
                param="task",
                value=task,
                suggestion=suggest(task, names),
            )
        tasks = [self.task(this, name) for name in ([task] if task else names)]
        return {"run_id": run_id, "tasks": [t for t in tasks if t["instances"]]}

    def run(self, run_id: str) -> _Recorded:
        if run_id not in self.recorded:
            row = self.store.run(run_id)
            manifest = read_manifest(RunLayout(self.root, run_id))
            tasks = {t["name"]: t for t in manifest["description"]["tasks"]}
            self.recorded[run_id] = _Recorded(
                run_id=run_id,
                params=manifest.get("params") or {},
                tasks=tasks,
                code=manifest.get("code") or {},
                force=bool(row.options.get("force")),
                force_tasks=frozenset(row.options.get("force_tasks") or ()),
                flags=own_flags(manifest["description"]),
                chains=chain_sources(manifest["description"]),
            )
        return self.recorded[run_id]

    def task_outputs(self, run_id: str, task: str) -> dict[int, tuple[str, str]]:
        key = (run_id, task)
        if key not in self.outputs:
            self.outputs[key] = {
                e: (value, digest) for e, value, digest in self.store.element_outputs(run_id, task)
            }
        return self.outputs[key]

    def task(self, this: _Recorded, name: str) -> dict[str, Any]:
        rows = self.store.uncached_instances(this.run_id, name)
        elements = [element for element, _identity in rows]
        earlier = self.store.earlier_instances(this.run_id, name, elements) if rows else {}
        again = self.attempts_before(this.run_id, name, set(elements) - set(earlier))
        groups: dict[tuple[str, str, str | None], _Group] = {}
        shared: dict[str | None, list[Reason]] = {}
        for element, identity in rows:
            prev = earlier.get(element)
            prev_run = prev[0] if prev else None
            if prev_run not in shared:
                shared[prev_run] = self.task_reasons(this, name, prev_run)
            reasons = shared[prev_run] or self.element_reasons(this, name, element, identity, prev)
            if prev is None and element in again and reasons[0][0] == "first run":
                reasons = again[element]  # compared with this run itself: named by its words
            for reason, detail, files in reasons:
                key = (reason, detail, prev_run)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group(reason, detail, prev_run)
                group.elements.append(element)
                if files and group.merged is not files:  # shared reasons: merged once
                    group.files.update(files)
                    group.merged = files
        return {
            "task": name,
            "instances": len(rows),
            "reasons": [
                {
                    "reason": g.reason,
                    "detail": g.shown(),
                    "count": len(g.elements),
                    "elements": g.elements[:_ELEMENTS],
                    "compared_with": g.compared_with,
                }
                for g in sorted(groups.values(), key=lambda g: -len(g.elements))
            ],
        }

    def attempts_before(
        self, run_id: str, name: str, elements: set[int]
    ) -> dict[int, list[Reason]]:
        """Why elements with no earlier run ran again in this one: an earlier attempt here.

        A retry (automatic, or ``retry``) runs again an element whose attempt failed or was
        cancelled; ``retry`` also one that succeeded, when it found outputs stale: its own
        (the run's record of stale outputs counts them per task, not per element) or what
        it consumes.
        """
        again = [element for element in self.store.resubmitted(run_id, name) if element in elements]
        if not again:
            return {}
        attempts = self.store.attempts_of(run_id, [(name, element) for element in again])
        stale = read_stale(RunLayout(self.root, run_id)).get(name)
        found: dict[int, list[Reason]] = {}
        for (_task, element), history in attempts.items():
            if len(history) < 2:
                continue
            before = history[-2]
            if before.state == InstanceState.DONE.value and stale:
                why = ", ".join(f"{reason}: {n}" for reason, n in sorted(stale.items()))
                detail = (
                    f"its earlier attempt in this run succeeded; this run found outputs of"
                    f" {name} stale ({why})"
                )
                found[element] = [("stale", detail, ())]
            elif before.state == InstanceState.DONE.value:
                detail = "its earlier attempt in this run succeeded; what it consumes changed"
                found[element] = [("upstream output", detail, ())]
            else:
                told = f": {before.reason}" if before.reason else ""
                detail = f"its earlier attempt in this run ended {before.state}{told}"
                found[element] = [("earlier attempt", detail, ())]
        return found

    def task_reasons(self, this: _Recorded, name: str, prev_run: str | None) -> list[Reason]:
        """Reasons shared by every element compared with ``prev_run``; empty if none."""
        if this.force or name in this.force_tasks:
            return [("forced", "--force" if this.force else f"--force-task {name}", ())]
        spec = this.tasks[name]
        if not spec.get("cache", True):
            return [("cache=False", "the task never uses the cache", ())]
        if prev_run is None:
            return [("first run", "no earlier instance of this element in the run directory", ())]
        prev = self.run(prev_run)
        old = prev.tasks.get(name)
        if old is None:
            return [("first run", f"run {prev_run} had no task {name}", ())]
        found: list[Reason] = []
        if str(old.get("version")) != str(spec.get("version")):
            found.append(("version", f"{old.get('version')!r} -> {spec.get('version')!r}", ()))
        found.extend(code_change(spec, old))
        found.extend(param_changes(this.flags.get(name, []), this.params, prev.params))
        return found

    def element_reasons(
        self,
        this: _Recorded,
        name: str,
        element: int,
        identity: str,
        prev: tuple[str, str, str] | None,
    ) -> list[Reason]:
        """Why one element reran when its task's own parameters, version and code did not."""
        assert prev is not None  # task_reasons answers "first run"
        prev_run, prev_identity, prev_state = prev
        if identity == prev_identity:
            if prev_state not in FINISHED:
                return [("earlier attempt", f"it was {prev_state} in run {prev_run}", ())]
            return [("stale", "its cached output was found stale by verification", ())]
        sources = self.sources(this, name)
        # Only a 1:1 chain makes the answer depend on the element; else one answer serves all.
        chained = this.chains.get(name, frozenset()) & self.run(prev_run).chains.get(
            name, frozenset()
        )
        at = tuple(element if source in chained else None for source in sources)
        key = (name, prev_run, at)
        if key not in self.answers:
            changed = [
                reason
                for source, index in zip(sources, at, strict=True)
                for reason in self.upstream_changes(source, this.run_id, prev_run, index)
            ]
            self.answers[key] = changed or self.rerun_upstream(this.run_id, sources)
        return self.answers[key]

    def rerun_upstream(self, run_id: str, sources: tuple[str, ...]) -> list[Reason]:
        """The reason when an upstream task ran again under the same identity.

        The cache keeps one output per identity, so an upstream element that ran again in
        this run (forced, ``cache=False``, or stale) replaced the output the earlier run saw.
        """
        for source in sources:
            if (run_id, source) not in self.ran_again:  # once per task, not per element
                uncached = self.store.uncached_instances(run_id, source)
                self.ran_again[(run_id, source)] = bool(uncached)
        again = [s for s in sources if self.ran_again[(run_id, s)]]
        if again:
            names = ", ".join(again)
            detail = f"{names} ran again in this run and returned other data"
            return [("upstream output", detail, ())]
        return [("inputs", "the data it consumes changed", ())]

    def sources(self, this: _Recorded, name: str) -> tuple[str, ...]:
        spec = this.tasks[name]
        return tuple(dict.fromkeys(s for inp in spec.get("inputs", []) for s in inp["sources"]))

    def upstream_changes(
        self, source: str, run_id: str, prev_run: str, element: int | None
    ) -> list[Reason]:
        """How ``source``'s outputs differ between the two runs.

        Only element ``element`` of it for a 1:1 chain (``element`` given), else all of them.
        """
        key = (source, run_id, prev_run, element)
        if key not in self.changes:
            new = self.task_outputs(run_id, source)
            old = self.task_outputs(prev_run, source)
            if element is None:
                self.changes[key] = output_changes(
                    source, [new[k] for k in sorted(new)], [old[k] for k in sorted(old)]
                )
            else:
                self.changes[key] = output_changes(
                    source,
                    [new[element]] if element in new else [],
                    [old[element]] if element in old else [],
                )
        return self.changes[key]


def own_flags(description: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """``task -> [(parameter key, flag)]`` of the parameters each task declares."""
    flags: dict[str, list[tuple[str, str]]] = {}
    for option in options_from_description(dict(description)):
        for task in option.tasks:
            flags.setdefault(task, []).append((option.key, option.flag))
    return flags
