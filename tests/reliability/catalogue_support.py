"""Support of the bad-input catalogue: ``Case``, ``Ctx``, and the setups the cases use."""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from reflow import Param, Result, Workflow
from reflow.definition.errors import UsageError
from reflow.running.rundir.layout import STORE_NAME, RunLayout
from tests.flows.param_types import wf as params_wf


@dataclass(frozen=True, slots=True, kw_only=True)
class Ctx:
    """One case's world: a copy of a run directory with one failed run, and odd paths."""

    base: Path
    root: Path
    run_id: str
    config: Path

    @property
    def fields(self) -> dict[str, str]:
        return {
            "root": str(self.root),
            "run_id": self.run_id,
            "file": str(self.base / "a-file.txt"),
            "empty": str(self.base / "empty"),
            "missing": str(self.base / "no" / "such" / "dir"),
            "base": str(self.base),
        }

    def write_config(self, text: str | bytes) -> None:
        self.config.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        self.config.write_bytes(data)

    def sql(self, statement: str) -> None:
        with sqlite3.connect(self.root / STORE_NAME) as db:
            db.execute(statement)
        db.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One bad input and what its error must say."""

    id: str
    argv: tuple[str, ...] | None = None
    call: Callable[[Ctx], Any] | None = None
    setup: Callable[[Ctx], None] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    error: type[Exception] = UsageError
    says: tuple[str, ...] = ()
    fix: tuple[str, ...] = ()
    argparse: bool = False
    script: bool = False
    stdin: str = ""
    flow: str = ""
    never: tuple[str, ...] = ()
    known: str = ""


PARAMS = ("--name", "x", "--years", "2020")
"""Valid values of the parameter-types flow's required parameters."""


def submit(*extra: str) -> tuple[str, ...]:
    """``submit`` of the parameter-types flow with valid values, then ``extra``."""
    return ("submit", "--run-dir", "{root}", *PARAMS, *extra)


def schema(version: str) -> Callable[[Ctx], None]:
    """A setup that sets the store's schema version."""
    return lambda ctx: ctx.sql(f"UPDATE meta SET value = '{version}' WHERE key = 'schema'")


def config(text: str | bytes) -> Callable[[Ctx], None]:
    """A setup that writes the user's config file."""
    return lambda ctx: ctx.write_config(text)


def damage_store(ctx: Ctx) -> None:
    (ctx.root / STORE_NAME).write_bytes(b"this is not sqlite" * 100)


def py_submit(**given: Any) -> Callable[[Ctx], Any]:
    def call(ctx: Ctx) -> Any:
        values: dict[str, Any] = {"name": "x", "years": [2020], "run_dir": ctx.root, **given}
        values = {k: v for k, v in values.items() if v is not DROP}
        if isinstance(values.get("run_dir"), str):
            values["run_dir"] = values["run_dir"].format(**ctx.fields)
        return params_wf.submit(**values)

    return call


DROP = object()


def define(body: Callable[[Workflow], Any]) -> Callable[[Ctx], Any]:
    """A call that defines a fresh workflow with ``body`` and validates it."""

    def call(ctx: Ctx) -> Any:
        wf = Workflow("bad")
        body(wf)
        return wf.validate()

    return call


def unknown_step(wf: Workflow) -> None:
    @wf.job()
    def prepare() -> list[str]:
        return []

    @wf.array_job()
    def convert(item: Annotated[str, Result(step="prepar")]) -> str:
        return item


def bad_mem(wf: Workflow) -> None:
    @wf.job(mem="4GG")
    def task() -> None: ...


def bad_time(wf: Workflow) -> None:
    @wf.job(time="ten minutes")
    def task() -> None: ...


def zero_cpus(wf: Workflow) -> None:
    @wf.job(cpus=0)
    def task() -> None: ...


def setup_line_break(wf: Workflow) -> None:
    @wf.job(setup=["module load a\nmodule load b"])
    def task() -> None: ...


def env_bad_name(wf: Workflow) -> None:
    @wf.job(env={"A-B": "1"})
    def task() -> None: ...


class Thing:
    """Not a type reflow can pass between processes."""


def unsupported_type(wf: Workflow) -> None:
    @wf.job()
    def task(thing: Thing) -> None: ...


def array_without_fan_out(wf: Workflow) -> None:
    @wf.job()
    def prepare() -> int:
        return 1

    @wf.array_job()
    def convert(item: Annotated[int, Result(step="prepare")]) -> int:
        return item


def type_mismatch(wf: Workflow) -> None:
    @wf.job()
    def prepare() -> list[str]:
        return []

    @wf.job()
    def total(count: Annotated[int, Result(step="prepare")]) -> int:
        return count


def cycle(wf: Workflow) -> None:
    @wf.job(after=["second"])
    def first() -> None: ...

    @wf.job(after=["first"])
    def second() -> None: ...


def bad_default(wf: Workflow) -> None:
    @wf.job()
    def task(count: int = "three") -> None: ...  # type: ignore[assignment]


def no_annotation(wf: Workflow) -> None:
    @wf.job()
    def task(count=3) -> None: ...


def none_default_without_none(wf: Workflow) -> None:
    @wf.job()
    def task(count: int = None) -> None: ...  # type: ignore[assignment]  # noqa: RUF013


def partition_with_space(wf: Workflow) -> None:
    @wf.job(partition="gpu nodes")
    def task() -> None: ...


def bad_short_flag(wf: Workflow) -> None:
    @wf.job()
    def task(count: Annotated[int, Param(help="n", short="count")] = 1) -> None: ...


def reserved_flag(wf: Workflow) -> None:
    @wf.job()
    def task(run_dir: str = "x") -> None: ...


def after_unknown(wf: Workflow) -> None:
    @wf.job(after=["setup"])
    def task() -> None: ...


def duplicate(wf: Workflow) -> None:
    @wf.job(name="task")
    def one() -> None: ...

    @wf.job(name="task")
    def two() -> None: ...


def break_manifest(text: str | None) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        manifest = RunLayout(ctx.root, ctx.run_id).manifest
        if text is None:
            manifest.unlink()
        else:
            manifest.write_text(text)

    return setup


def foreign_sqlite(ctx: Ctx) -> None:
    (ctx.base / "other").mkdir()
    with sqlite3.connect(ctx.base / "other" / STORE_NAME) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    db.close()


def newer_store(ctx: Ctx) -> None:
    """A copy of the run directory's store in ``{base}/newer``, of schema version 99."""
    (ctx.base / "newer").mkdir()
    with (
        sqlite3.connect(ctx.root / STORE_NAME) as source,
        sqlite3.connect(ctx.base / "newer" / STORE_NAME) as target,
    ):
        source.backup(target)
        target.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    source.close()
    target.close()


def damaged_other(ctx: Ctx) -> None:
    (ctx.base / "damaged").mkdir()
    (ctx.base / "damaged" / STORE_NAME).write_bytes(b"this is not sqlite" * 100)


def empty_store(ctx: Ctx) -> None:
    from reflow.running.store.sqlite import SqliteStore

    SqliteStore.open(ctx.base / "fresh", create=True).close()


BAD_FLOW_SCRIPT = textwrap.dedent(
    """
    from reflow import Workflow

    wf = Workflow("broken")

    @wf.job(mem="4GG")
    def task() -> None: ...

    if __name__ == "__main__":
        raise SystemExit(wf.cli())
    """
)


GOOD_FLOW_SCRIPT = textwrap.dedent(
    """
    from reflow import Workflow

    wf = Workflow("piped")

    @wf.job()
    def task() -> int:
        return 1

    if __name__ == "__main__":
        raise SystemExit(wf.cli())
    """
)
"""A valid flow, for cases that run it in a way a worker cannot follow (``python -``)."""


INCLUDE_FLOW_SCRIPT = textwrap.dedent(
    """
    from typing import Annotated

    from reflow import Flow, Result, Workflow

    stats = Flow("stats")


    @stats.job()
    def summarize(values: Annotated[list[int], Result(step="clean")]) -> int:
        return sum(values)


    wf = Workflow("analysis")


    @wf.job()
    def raw_clean() -> list[int]:
        return [1, 2, 3]


    wf.include(stats, prefix="stats"BIND)

    if __name__ == "__main__":
        raise SystemExit(wf.cli())
    """
)
"""A flow that includes a reusable flow naming the external step ``clean``; ``BIND`` is
replaced by the ``bind=`` argument a case gives."""


def include_flow(bind: str) -> str:
    """The include flow script with ``bind`` (``', bind={...}'`` or ``''``)."""
    return INCLUDE_FLOW_SCRIPT.replace("BIND", bind)
