"""Flow: decorators record tasks and return functions unchanged; include copies with prefixes."""

from typing import Annotated, Any

import pytest

from reflow import DefinitionError, Flow, Param, Result, RunDir, Workflow
from reflow.definition.wiring import EdgeMode


def make_conversion() -> Flow:
    conversion = Flow("conversion")

    @conversion.job()
    def prepare(
        count: Annotated[int, Param(namespace="local")] = 2, run_dir: RunDir = RunDir()
    ) -> list[str]:
        return [f"f{i}" for i in range(count)]

    @conversion.array_job()
    def convert(item: Annotated[str, Result(step="prepare")]) -> str:
        return item

    @conversion.job(after=["convert"])
    def tidy() -> str:
        return ""

    return conversion


def test_job_returns_the_function_unchanged_and_registers_it():
    wf = Workflow("w")

    def prepare(start: str) -> str:
        return start * 2

    assert wf.job()(prepare) is prepare
    assert prepare("ab") == "abab"
    spec = wf.tasks["prepare"]
    assert (spec.name, spec.is_array, spec.func) == ("prepare", False, prepare)


def test_job_without_parentheses_registers_too():
    wf = Workflow("w")

    @wf.job
    def prepare() -> str:
        return "x"

    @wf.array_job
    def convert(item: Annotated[str, Result(step="prepare")]) -> str:
        return item

    assert prepare() == "x"
    assert [(s.name, s.is_array) for s in wf.tasks.values()] == [
        ("prepare", False),
        ("convert", True),
    ]


def test_array_job_is_job_with_array_true():
    wf = Workflow("w")

    def a(item: Annotated[str, Result(step="p")]) -> str:
        return item

    def b(item: Annotated[str, Result(step="p")]) -> str:
        return item

    wf.array_job(cpus=2)(a)
    wf.job(array=True, cpus=2)(b)
    first, second = wf.tasks["a"], wf.tasks["b"]
    assert (first.is_array, first.resources) == (second.is_array, second.resources)


def test_array_job_refuses_the_array_option():
    wf = Workflow("w")
    options: dict[str, Any] = {"array": False}
    with pytest.raises(DefinitionError):
        wf.array_job(**options)


def test_options_are_recorded():
    wf = Workflow("w")

    def check(value: Any) -> bool:
        return value is not None

    @wf.job(name="first", version=2, cache=False, verify=check, after=["x", "x"])
    def prepare() -> str:
        return ""

    spec = wf.tasks["first"]
    assert (spec.name, spec.version, spec.cache, spec.has_verify, spec.verify) == (
        "first",
        "2",
        False,
        True,
        check,
    )
    assert spec.after == ("x",)


def test_unknown_option_is_refused_with_a_suggestion():
    wf = Workflow("w")
    options: dict[str, Any] = {"cpu": 4}

    def prepare() -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.job(**options)(prepare)
    error = info.value
    assert (error.task, error.param, error.suggestion) == ("prepare", "cpu", "cpus")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("after", "cleanup"),
        ("after", 5),
        ("after", ["ok", 3]),
        ("after", None),
        ("version", ""),
        ("version", True),
        ("version", 1.5),
        ("verify", "yes"),
        ("cache", "no"),
        ("array", 1),
    ],
    ids=repr,
)
def test_bad_option_values_are_refused_with_fields(option, value):
    wf = Workflow("w")
    options: dict[str, Any] = {option: value}

    def prepare() -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.job(**options)(prepare)
    assert (info.value.task, info.value.param, info.value.value) == ("prepare", option, value)
    assert wf.tasks == {}


@pytest.mark.parametrize("name", ["1x", "a-b", "", "with space", 3])
def test_invalid_names_are_refused(name):
    with pytest.raises(DefinitionError) as info:
        Flow(name)
    assert info.value.value == name
    wf = Workflow("w")

    def prepare() -> str:
        return ""

    with pytest.raises(DefinitionError):
        wf.job(name=name)(prepare)
    with pytest.raises(DefinitionError):
        wf.include(Flow("f"), prefix=name)


def test_decorating_a_non_callable_is_refused():
    wf = Workflow("w")
    with pytest.raises(DefinitionError):
        wf.job()(42)  # type: ignore[arg-type]


def test_duplicate_task_names_are_refused():
    wf = Workflow("w")

    @wf.job()
    def prepare() -> str:
        return ""

    first = wf.tasks["prepare"]

    def other() -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.job(name="prepare")(other)
    assert (info.value.task, info.value.value) == ("prepare", "prepare")
    assert wf.tasks["prepare"] is first


def test_tasks_is_a_copy():
    wf = Workflow("w")

    @wf.job()
    def prepare() -> str:
        return ""

    wf.tasks.clear()  # type: ignore[attr-defined]
    assert list(wf.tasks) == ["prepare"]


def test_incompatible_consumer_is_refused_at_registration():
    wf = Workflow("w")

    @wf.job()
    def prepare() -> list[str]:
        return []

    def convert(item: Annotated[int, Result(step="prepare")]) -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.array_job()(convert)
    assert (info.value.task, info.value.param, info.value.value) == ("convert", "item", "list[str]")
    assert "convert" not in wf.tasks


def test_incompatible_producer_registered_later_is_refused_naming_the_consumer():
    wf = Workflow("w")

    @wf.array_job()
    def convert(item: Annotated[int, Result(step="prepare")]) -> str:
        return ""

    def prepare() -> list[str]:
        return []

    with pytest.raises(DefinitionError) as info:
        wf.job()(prepare)
    assert (info.value.task, info.value.param, info.value.value) == ("convert", "item", "list[str]")
    assert list(wf.tasks) == ["convert"]


def test_include_without_prefix_copies_the_tasks():
    conversion = make_conversion()
    wf = Workflow("w")
    wf.include(conversion)
    assert list(wf.tasks) == ["prepare", "convert", "tidy"]
    assert wf.tasks["convert"] == conversion.tasks["convert"]
    assert wf.tasks["prepare"].func is conversion.tasks["prepare"].func


def test_include_with_prefix_renames_tasks_and_references():
    conversion = make_conversion()
    wf = Workflow("w")
    wf.include(conversion, prefix="era5")
    assert list(wf.tasks) == ["era5_prepare", "era5_convert", "era5_tidy"]
    assert wf.tasks["era5_convert"].inputs[0].sources == ("era5_prepare",)
    assert wf.tasks["era5_tidy"].after == ("era5_convert",)
    assert wf.tasks["era5_prepare"].func is conversion.tasks["prepare"].func
    assert list(conversion.tasks) == ["prepare", "convert", "tidy"]
    edges = [(e.source, e.target, e.mode) for e in wf.graph().edges]
    assert edges == [
        ("era5_prepare", "era5_convert", EdgeMode.FAN_OUT),
        ("era5_convert", "era5_tidy", None),
    ]


def test_include_with_prefix_renames_local_flags():
    wf = Workflow("w")
    wf.include(make_conversion(), prefix="icon")
    from reflow.definition.options import submit_options

    (option,) = submit_options(wf.graph().tasks)
    assert (option.key, option.flag) == ("icon_prepare.count", "--icon-prepare-count")


def test_include_twice_with_prefixes_and_merge_from_the_workflow():
    conversion = make_conversion()
    wf = Workflow("combined")
    wf.include(conversion, prefix="era5")
    wf.include(conversion, prefix="icon")

    @wf.job()
    def merge(
        era5: Annotated[list[str], Result(step="era5_convert")],
        icon: Annotated[list[str], Result(step="icon_convert")],
    ) -> str:
        return ""

    graph = wf.graph()
    assert [(e.source, e.param, e.mode) for e in graph.incoming("merge")] == [
        ("era5_convert", "era5", EdgeMode.GATHER),
        ("icon_convert", "icon", EdgeMode.GATHER),
    ]
    assert graph.downstream({"era5_prepare"}) == {"era5_convert", "era5_tidy", "merge"}


def test_included_task_may_read_a_task_of_the_including_workflow():
    part = Flow("part")

    @part.array_job()
    def convert(item: Annotated[str, Result(step="listing")]) -> str:
        return item

    wf = Workflow("w")

    @wf.job()
    def listing() -> list[str]:
        return []

    wf.include(part, prefix="p")
    assert wf.tasks["p_convert"].inputs[0].sources == ("listing",)
    assert wf.graph().incoming("p_convert")[0].mode is EdgeMode.FAN_OUT


@pytest.mark.parametrize("prefix", [None, "era5"])
def test_duplicate_after_include_is_refused_and_adds_nothing(prefix):
    wf = Workflow("w")
    wf.include(make_conversion(), prefix=prefix)
    before = wf.tasks
    with pytest.raises(DefinitionError) as info:
        wf.include(make_conversion(), prefix=prefix)
    expected = "prepare" if prefix is None else "era5_prepare"
    assert (info.value.task, info.value.value) == (expected, expected)
    assert wf.tasks == before


def test_include_clashing_with_an_own_task_leaves_no_half_include():
    wf = Workflow("w")

    @wf.job()
    def era5_convert() -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.include(make_conversion(), prefix="era5")
    assert info.value.task == "era5_convert"
    assert list(wf.tasks) == ["era5_convert"]


def test_own_task_clashing_with_an_included_one_is_refused():
    wf = Workflow("w")
    wf.include(make_conversion(), prefix="era5")

    def era5_prepare() -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.job()(era5_prepare)
    assert (info.value.task, info.value.value) == ("era5_prepare", "era5_prepare")


def test_a_flow_may_include_itself_with_a_prefix():
    flow = make_conversion()
    flow.include(flow, prefix="copy")
    assert list(flow.tasks) == [
        "prepare", "convert", "tidy", "copy_prepare", "copy_convert", "copy_tidy",
    ]  # fmt: skip


def test_include_refuses_what_is_not_a_flow():
    wf = Workflow("w")
    with pytest.raises(DefinitionError):
        wf.include("conversion")  # type: ignore[arg-type]


def test_flow_validates_like_a_workflow():
    flow = make_conversion()
    flow.validate()
    assert [t.name for t in flow.graph().tasks] == ["prepare", "convert", "tidy"]
