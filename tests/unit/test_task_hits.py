"""Task hits: a whole task from the cache gives exactly what per-element planning gives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

import pytest

from reflow import Flow, Param, Result
from reflow.definition.errors import StoreError
from reflow.planning.identity import list_hash, output_hash, task_key
from reflow.planning.planner import Finished, TaskPlan, TaskProgress, plan
from reflow.planning.task_hits import (
    ByElement,
    TaskHit,
    output_digest,
    output_hashes,
    stored_outputs,
)

flow = Flow("hits")


@flow.job()
def prepare(count: Annotated[int, Param(help="n")] = 3) -> list[str]:
    return [f"i{n}" for n in range(count)]


@flow.array_job()
def convert(item: Annotated[str, Result(step="prepare")], scale: int = 1) -> str:
    return item * scale


@flow.array_job()
def other(item: Annotated[str, Result(step="prepare")]) -> str:
    return item.upper()


@flow.array_job()
def pair(
    left: Annotated[str, Result(step="convert")], right: Annotated[str, Result(step="other")]
) -> str:
    return left + right


@flow.job()
def publish(paths: Annotated[list[str], Result(step="convert")]) -> str:
    return ",".join(paths)


GRAPH = flow.graph()
PARAMS = {"count": 3, "convert.scale": 2}
ITEMS = ["i0", "i1", "i2"]


def finished(value: object) -> Finished:
    return Finished(value, output_hash(value))


def prepared() -> dict[str, TaskProgress]:
    return {"prepare": TaskProgress(size=1, counts={"done": 1}, outputs=[finished(ITEMS)])}


class Cache:
    """A store snapshot: outputs by identity, and earlier plannings by task key."""

    def __init__(self) -> None:
        self.outputs: dict[str, Finished] = {}
        self.plannings: dict[tuple[str, str], tuple[str, ...]] = {}
        self.asked: list[tuple[str, int]] = []
        self.read: list[str] = []

    def record(self, task_plan: TaskPlan, outputs: Sequence[Finished]) -> None:
        self.plannings[(task_plan.task, task_plan.key)] = task_plan.identities
        self.outputs.update(zip(task_plan.identities, outputs, strict=True))

    def lookup(self, task: str, identities: Sequence[str]) -> Mapping[str, Finished]:
        self.asked.append((task, len(identities)))
        return {i: self.outputs[i] for i in identities if i in self.outputs}

    def task_lookup(self, task: str, key: str) -> TaskHit | None:
        identities = self.plannings.get((task, key))
        if identities is None or not all(i in self.outputs for i in identities):
            return None
        hits = [self.outputs[i] for i in identities]

        def read() -> list[tuple[str, str]]:
            self.read.append(task)
            return [(repr(f.value).replace("'", '"'), f.hash) for f in hits]

        def read_hashes() -> list[str]:
            self.read.append(f"{task} hashes")
            return [f.hash for f in hits]

        # A recorded digest when all outputs are known; the hashes read when asked for.
        outputs = stored_outputs(
            len(hits),
            hashes=None,
            digest=list_hash([f.hash for f in hits]),
            read_hashes=read_hashes,
            read=read,
        )
        return TaskHit(source="earlier", outputs=outputs)


def first_run(cache: Cache) -> dict[str, TaskPlan]:
    """Plan convert (all misses), 'run' it, then plan what follows, recording everything."""
    (convert_plan,) = [t for t in plan(GRAPH, PARAMS, prepared(), cache.lookup).tasks
                       if t.task == "convert"]  # fmt: skip
    cache.record(convert_plan, [finished(item * 2) for item in ITEMS])
    return {"convert": convert_plan}


def test_a_task_hit_plans_every_element_cached_and_asks_nothing_per_element() -> None:
    cache = Cache()
    first = first_run(cache)
    cache.asked.clear()
    progress = prepared()
    others = [finished(item.upper()) for item in ITEMS]
    progress["other"] = TaskProgress(size=3, counts={"done": 3}, outputs=others)
    result = plan(GRAPH, PARAMS, progress, cache.lookup, task_lookup=cache.task_lookup)
    by_task = {t.task: t for t in result.tasks}
    hit = by_task["convert"]
    assert hit.whole is not None
    assert hit.key == first["convert"].key
    assert hit.element_count == 3
    assert hit.runnable == []
    assert ("convert", 3) not in cache.asked  # no identity of convert was computed or asked
    # publish gathers the hit's outputs, pair reads them 1:1: the same identities as from
    # per-element hits
    per_element = plan(GRAPH, PARAMS, progress, cache.lookup)
    expected = {t.task: t.identities for t in per_element.tasks}
    assert by_task["publish"].identities == expected["publish"]
    assert by_task["pair"].identities == expected["pair"]
    # publish's key takes the recorded digest; pair's identities need each hash, read once;
    # no value is read until pair's inputs are written
    assert cache.read == ["convert hashes"]
    assert [row["left"] for row in by_task["pair"].inputs] == ["i0i0", "i1i1", "i2i2"]
    assert cache.read == ["convert hashes", "convert"]


def test_a_chain_after_a_task_hit_plans_the_same_elements_as_per_element() -> None:
    cache = Cache()
    first_run(cache)
    progress = prepared()
    # other[1] finished, the rest still runs: pair is planned element by element
    progress["other"] = TaskProgress(
        size=3, counts={"done": 1, "submitted": 2}, finished={1: finished("I1")}
    )
    whole = plan(GRAPH, PARAMS, progress, cache.lookup, task_lookup=cache.task_lookup)
    one_by_one = plan(GRAPH, PARAMS, progress, cache.lookup)
    got = {t.task: t for t in whole.tasks}
    want = {t.task: t for t in one_by_one.tasks}
    assert got["convert"].whole is not None
    assert want["convert"].whole is None
    assert got["pair"].elements == want["pair"].elements == (1,)
    assert got["pair"].identities == want["pair"].identities
    assert got["pair"].inputs == want["pair"].inputs
    assert cache.read == ["convert"]  # the chain's inputs file needs convert[1]'s value


@pytest.mark.parametrize("how", ["forced", "force_all", "verify"])
def test_forcing_or_verifying_never_asks_for_a_task_hit(how: str) -> None:
    cache = Cache()
    first_run(cache)
    asked: list[str] = []

    def task_lookup(task: str, key: str) -> TaskHit | None:
        asked.append(task)
        return cache.task_lookup(task, key)

    result = plan(
        GRAPH,
        PARAMS,
        prepared(),
        cache.lookup,
        task_lookup=task_lookup,
        force_tasks=["convert"] if how == "forced" else [],
        force_all=how == "force_all",
        validate=(lambda spec, hit: True) if how == "verify" else None,
    )
    assert "convert" not in asked
    assert all(t.whole is None for t in result.tasks)


def test_a_changed_upstream_output_gives_another_key() -> None:
    def key(items: list[str], version: str = "1", scale: int = 2, mode: str = "fan-out") -> str:
        digest = list_hash(output_hashes([finished(items)]))
        return task_key(
            task="convert",
            version=version,
            params={"scale": scale},
            inputs={"item": [(mode, "prepare", digest)]},
            array=True,
        )

    base = key(ITEMS)
    assert key(ITEMS) == base
    changed = [key(["i0", "i1"]), key(ITEMS, version="2"), key(ITEMS, scale=3)]
    changed.append(key(ITEMS, mode="flatten+fan-out"))
    assert base not in changed
    assert len(set(changed)) == len(changed)


def test_the_task_key_is_pinned() -> None:
    digest = list_hash([output_hash(["a", "b"])])
    assert (
        task_key(
            task="convert",
            version="1",
            params={"scale": 2},
            inputs={"item": [("fan-out", "prepare", digest)]},
            array=True,
        )
        == "7bee4dffa4272dc13337f688a36454b8bfe9bdb342928670f590192add668a12"
    )


def test_outputs_by_element_read_nothing_until_a_value_is_used() -> None:
    reads: list[int] = []

    def read() -> list[tuple[str, str]]:
        reads.append(1)
        return [('"a"', output_hash("a")), ('"b"', output_hash("b"))]

    hashes = [output_hash("a"), output_hash("b")]
    outputs = stored_outputs(
        2, hashes=None, digest=list_hash(hashes), read_hashes=lambda: list(hashes), read=read
    )
    by_element = ByElement(outputs)
    assert len(by_element) == 2
    assert 1 in by_element
    assert 2 not in by_element
    assert output_digest(outputs) == list_hash(hashes)
    assert output_hashes(outputs) == hashes
    assert reads == []
    assert by_element[1].value == "b"
    assert by_element.get(5) is None
    assert reads == [1]


def test_outputs_that_changed_since_their_hashes_were_read_are_refused() -> None:
    hashes = [output_hash("a"), output_hash("b")]
    changed = [('"a"', output_hash("a")), ('"c"', output_hash("c"))]
    outputs = stored_outputs(
        2,
        hashes=None,
        digest=list_hash(hashes),
        read_hashes=lambda: hashes[:1],
        read=lambda: changed,
    )
    # A store error: a Slurm turn that meets it is tried again by a delayed successor.
    with pytest.raises(StoreError, match="changed while this turn planned"):
        outputs.hashes()
    with pytest.raises(StoreError, match="changed while this turn planned"):
        outputs[0]
