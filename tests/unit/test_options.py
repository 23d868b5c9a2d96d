"""Options: task parameters become submit flags; shared globals merge, collisions are refused."""

from typing import Annotated

import pytest

from reflow import DefinitionError, Param, Result, Workflow
from reflow.definition.options import (
    RESERVED_FLAGS,
    option_strings,
    param_key,
    submit_options,
)
from reflow.definition.spec import UNSET, ParamSpec, TaskSpec
from reflow.definition.types import TypeRef
from tests.flows import param_types


def test_flags_keys_and_tasks_of_the_param_types_flow():
    options = {o.key: o for o in submit_options(param_types.wf.graph().tasks)}
    assert list(options) == [
        "name", "years", "count", "ratio", "dry", "output", "model", "level", "tags", "seed",
        "ingest.chunk",
    ]  # fmt: skip
    assert options["name"].tasks == ("configure", "ingest")
    assert (options["name"].flag, options["name"].short) == ("--name", "-n")
    assert options["ingest.chunk"].flag == "--ingest-chunk"
    assert options["ingest.chunk"].tasks == ("ingest",)
    assert options["years"].is_required
    assert options["count"].default == 3
    assert options["seed"].default is None


def test_underscores_become_dashes():
    wf = Workflow("w")

    @wf.job()
    def prepare(start_date: str, chunk_size: Annotated[int, Param(namespace="local")] = 1) -> str:
        return ""

    flags = [o.flag for o in submit_options(wf.graph().tasks)]
    assert flags == ["--start-date", "--prepare-chunk-size"]


def test_param_key_is_the_name_for_globals_and_task_dot_name_for_locals():
    glob = ParamSpec(name="chunk", type=TypeRef("int"))
    local = ParamSpec(name="chunk", type=TypeRef("int"), namespace="local")
    assert param_key("ingest", glob) == "chunk"
    assert param_key("ingest", local) == "ingest.chunk"


def test_option_strings_of_a_bool_include_the_negation():
    options = {o.key: o for o in submit_options(param_types.wf.graph().tasks)}
    assert option_strings(options["dry"]) == ("--dry", "--no-dry")
    assert option_strings(options["name"]) == ("-n", "--name")


def test_global_param_shared_by_two_tasks_takes_the_first_help():
    wf = Workflow("w")

    @wf.job()
    def a(start: str) -> str:
        return start

    @wf.job()
    def b(start: Annotated[str, Param(help="Start date")]) -> str:
        return start

    (option,) = submit_options(wf.graph().tasks)
    assert (option.key, option.help, option.tasks) == ("start", "Start date", ("a", "b"))
    assert option.default is UNSET


def _two_tasks(first: ParamSpec, second: ParamSpec) -> DefinitionError:
    tasks = [TaskSpec(name="a", params=(first,)), TaskSpec(name="b", params=(second,))]
    with pytest.raises(DefinitionError) as info:
        submit_options(tasks)
    return info.value


def test_global_param_with_two_types_is_refused():
    error = _two_tasks(
        ParamSpec(name="chunk", type=TypeRef("int")), ParamSpec(name="chunk", type=TypeRef("str"))
    )
    assert (error.task, error.param, error.value) == ("b", "chunk", "str")


def test_global_param_with_two_defaults_is_refused():
    error = _two_tasks(
        ParamSpec(name="chunk", type=TypeRef("int"), default=1),
        ParamSpec(name="chunk", type=TypeRef("int"), default=2),
    )
    assert (error.task, error.param, error.value) == ("b", "chunk", "2")


def test_global_param_required_in_one_task_and_defaulted_in_another_is_refused():
    error = _two_tasks(
        ParamSpec(name="chunk", type=TypeRef("int")),
        ParamSpec(name="chunk", type=TypeRef("int"), default=2),
    )
    assert (error.task, error.param, error.value) == ("b", "chunk", "2")


def test_global_param_with_two_short_flags_is_refused():
    error = _two_tasks(
        ParamSpec(name="chunk", type=TypeRef("int"), short="-c"),
        ParamSpec(name="chunk", type=TypeRef("int"), short="-k"),
    )
    assert (error.task, error.param, error.value) == ("b", "chunk", "'-k'")


def test_global_param_conflict_is_found_by_validate():
    wf = Workflow("w")

    @wf.job()
    def a(chunk: int = 1) -> str:
        return ""

    @wf.job()
    def b(chunk: str = "1") -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.validate()
    assert (info.value.task, info.value.param, info.value.value) == ("b", "chunk", "str")


def test_the_same_name_local_in_two_tasks_gives_two_flags():
    wf = Workflow("w")

    @wf.job()
    def a(chunk: Annotated[int, Param(namespace="local")] = 1) -> list[str]:
        return []

    @wf.job()
    def b(chunk: Annotated[str, Param(namespace="local")] = "x") -> str:
        return ""

    assert [o.flag for o in submit_options(wf.graph().tasks)] == ["--a-chunk", "--b-chunk"]


@pytest.mark.parametrize(
    ("name", "kind", "flag"),
    [
        ("run_dir", "str", "--run-dir"),
        ("force", "bool", "--force"),
        ("force_task", "str", "--force-task"),
        ("verify", "bool", "--verify"),
        ("no_verify", "bool", "--no-verify"),
        ("wait", "int", "--wait"),
        ("help", "str", "--help"),
    ],
)
def test_flags_that_reflow_uses_are_refused(name, kind, flag):
    task = TaskSpec(name="prepare", params=(ParamSpec(name=name, type=TypeRef(kind)),))
    with pytest.raises(DefinitionError) as info:
        submit_options([task])
    assert (info.value.task, info.value.param, info.value.value) == ("prepare", name, flag)
    assert flag in RESERVED_FLAGS


def test_a_plain_run_dir_parameter_collides_with_the_run_dir_flag():
    wf = Workflow("w")

    @wf.job()
    def prepare(run_dir: str) -> str:
        return run_dir

    with pytest.raises(DefinitionError) as info:
        wf.validate()
    assert (info.value.task, info.value.param, info.value.value) == (
        "prepare",
        "run_dir",
        "--run-dir",
    )


def test_short_flag_h_is_reserved_for_help():
    wf = Workflow("w")

    @wf.job()
    def prepare(host: Annotated[str, Param(short="-h")]) -> str:
        return host

    with pytest.raises(DefinitionError) as info:
        wf.validate()
    assert (info.value.task, info.value.param, info.value.value) == ("prepare", "host", "-h")


def test_local_flag_colliding_with_a_global_one_is_refused():
    wf = Workflow("w")

    @wf.job()
    def ingest(chunk: Annotated[int, Param(namespace="local")] = 1) -> list[str]:
        return []

    @wf.job()
    def other(ingest_chunk: int = 1) -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.validate()
    error = info.value
    assert (error.task, error.param, error.value) == ("other", "ingest_chunk", "--ingest-chunk")


def test_duplicate_short_flags_are_refused():
    wf = Workflow("w")

    @wf.job()
    def prepare(
        name: Annotated[str, Param(short="-n")],
        number: Annotated[int, Param(short="-n")] = 1,
    ) -> str:
        return name

    with pytest.raises(DefinitionError) as info:
        wf.validate()
    assert (info.value.task, info.value.param, info.value.value) == ("prepare", "number", "-n")


@pytest.mark.parametrize("bool_first", [True, False], ids=["bool-first", "str-first"])
def test_bool_negation_colliding_with_another_flag_is_refused(bool_first):
    wf = Workflow("w")

    def with_bool(x: bool = False) -> str:
        return ""

    def with_str(no_x: str = "") -> str:
        return ""

    for func in (with_bool, with_str) if bool_first else (with_str, with_bool):
        wf.job()(func)
    with pytest.raises(DefinitionError) as info:
        wf.validate()
    assert info.value.value == "--no-x"
    assert info.value.task == ("with_str" if bool_first else "with_bool")


def test_a_str_flag_may_share_a_stem_with_another_str_flag():
    wf = Workflow("w")

    @wf.job()
    def prepare(cache: str = "", no_cache: str = "") -> str:
        return ""

    assert [o.flag for o in submit_options(wf.graph().tasks)] == ["--cache", "--no-cache"]


def test_result_parameters_are_not_flags():
    wf = Workflow("w")

    @wf.job()
    def prepare() -> list[str]:
        return []

    @wf.array_job()
    def convert(item: Annotated[str, Result(step="prepare")], bucket: str) -> str:
        return item

    assert [o.key for o in submit_options(wf.graph().tasks)] == ["bucket"]


def test_a_parameter_named_command_is_refused():
    wf = Workflow("f")

    @wf.job()
    def task(command: str = "ls") -> str:
        return command

    with pytest.raises(DefinitionError) as caught:
        wf.validate()
    assert (caught.value.task, caught.value.param) == ("task", "command")


def test_a_parameter_named_force_tasks_is_refused():
    wf = Workflow("f")

    @wf.job()
    def task(force_tasks: str = "") -> str:
        return force_tasks

    with pytest.raises(DefinitionError) as caught:
        wf.validate()
    assert (caught.value.task, caught.value.param) == ("task", "force_tasks")
