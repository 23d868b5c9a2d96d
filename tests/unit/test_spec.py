"""Specs: a decorated function's signature becomes a frozen TaskSpec, misuse is refused."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from reflow import DefinitionError, Flow, Param, Result, RunDir
from reflow.definition.errors import FlowDefinitionError
from reflow.definition.resources import Resources
from reflow.definition.spec import InputSpec, TaskSpec, task_spec_from_function
from reflow.definition.types import TypeRef, from_annotation

STR = TypeRef("str")


def spec_of(func: Callable[..., Any], *, is_array: bool = False) -> TaskSpec:
    return task_spec_from_function(
        func,
        name=func.__name__,
        is_array=is_array,
        resources=Resources(),
        after=(),
        version="1",
        cache=True,
        verify=None,
    )


def refused(func: Callable[..., Any]) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        spec_of(func)
    return info.value


class Custom:
    pass


def test_signature_becomes_params_inputs_run_dir_and_return_type():
    def convert(
        nc_file: Annotated[str, Result(step="prepare")],
        bucket: Annotated[str, Param(help="Bucket", short="-b")],
        chunk: Annotated[int, Param(namespace="local")] = 256,
        run_dir: RunDir = RunDir(),
    ) -> list[Path]:
        return []

    spec = spec_of(convert, is_array=True)
    assert spec.name == "convert"
    assert spec.is_array
    assert spec.inputs == (InputSpec(name="nc_file", type=STR, sources=("prepare",)),)
    assert [(p.name, p.type, p.help, p.short, p.namespace) for p in spec.params] == [
        ("bucket", STR, "Bucket", "-b", "global"),
        ("chunk", TypeRef("int"), "", None, "local"),
    ]
    assert spec.params[0].is_required
    assert spec.params[1].default == 256
    assert spec.run_dir_arg == "run_dir"
    assert spec.returns == TypeRef("list", (TypeRef("path"),))
    assert spec.func is convert
    assert spec.module == __name__
    assert spec.qualname.endswith("convert")


def test_spec_is_frozen_and_equal_without_the_function():
    def prepare(start: str) -> str:
        return start

    spec = spec_of(prepare)
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert spec == TaskSpec(
        name="prepare",
        params=spec.params,
        module=spec.module,
        qualname=spec.qualname,
        returns=STR,
    )


def test_no_return_annotation_means_unknown_output():
    def prepare():
        return 1

    assert spec_of(prepare).returns is None


def test_annotated_return_type_is_unwrapped():
    def prepare() -> Annotated[int, "meta"]:
        return 1

    assert spec_of(prepare).returns == TypeRef("int")


@pytest.mark.parametrize(
    ("default", "fix"),
    [(3, "value: int = 3"), (0.5, "value: float = 0.5"), ("x", "value: str = 'x'"),
     (None, "value: str | None = None")],
)  # fmt: skip
def test_plain_parameter_without_annotation_is_refused_with_the_annotation_to_write(default, fix):
    def prepare(value=default):
        return value

    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "value")
    assert "has no type annotation" in str(error)
    assert error.hint == f"annotate it, e.g. {fix}"


def test_plain_parameter_without_annotation_or_default_is_refused():
    def prepare(value):
        return value

    assert refused(prepare).hint == "annotate it, e.g. value: str"


@pytest.mark.parametrize(("annotation", "shown"), [(int, "int"), (list[str], "list[str]")])
def test_none_default_of_a_type_without_none_is_refused_with_the_optional_fix(annotation, shown):
    def prepare(n: annotation = None) -> None:  # type: ignore[valid-type]
        return None

    error = refused(prepare)
    assert (error.task, error.param, error.value) == ("prepare", "n", None)
    assert f"its type {shown} does not allow None" in str(error)
    assert error.hint == f"write n: {shown} | None = None"


def test_a_mismatched_default_names_the_type_with_the_right_article():
    def prepare(count: int = "three") -> None:  # type: ignore[assignment]
        return None

    assert "which is not an int" in str(refused(prepare))


def test_every_bad_parameter_of_one_task_is_reported_together():
    def prepare(a, b: int = None, *rest: int) -> None:  # type: ignore[assignment]  # noqa: RUF013
        return None

    error = refused(prepare)
    assert isinstance(error, FlowDefinitionError)
    assert [(e.task, e.param) for e in error.errors] == [
        ("prepare", "a"), ("prepare", "b"), ("prepare", "rest"),
    ]  # fmt: skip
    lines = str(error).splitlines()
    assert lines[0] == "3 errors in task 'prepare':"
    assert lines[1].startswith("  1. prepare(a): has no type annotation")
    assert lines[3].startswith("  3. prepare(rest): takes *args")


def test_none_default_is_not_unset():
    def prepare(seed: int | None = None) -> str:
        return ""

    (param,) = spec_of(prepare).params
    assert param.default is None
    assert not param.is_required


def test_path_default_is_accepted_and_kept_as_a_path():
    def prepare(out: Path = Path("out"), extra: tuple[Path, ...] = (Path("a"),)) -> str:
        return ""

    out, extra = spec_of(prepare).params
    assert out.default == Path("out")
    assert extra.default == [Path("a")]


def test_tuple_default_of_a_list_parameter_becomes_a_list():
    def prepare(tags: tuple[str, ...] = ("a", "b")) -> str:
        return ""

    assert spec_of(prepare).params[0].default == ["a", "b"]


@pytest.mark.parametrize(
    ("annotation", "default"),
    [(int, "3"), (Literal["a", "b"], "c"), (Path, "out"), (list[int], ["x"]), (bool, 0)],
    ids=["int", "literal", "path-as-str", "list", "bool"],
)
def test_default_must_match_the_annotation(annotation, default):
    def prepare(value=default):
        return value

    prepare.__annotations__["value"] = annotation
    error = refused(prepare)
    assert (error.task, error.param, error.value) == ("prepare", "value", default)


def test_args_are_refused():
    def prepare(*files: str) -> str:
        return ""

    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "files")


def test_kwargs_are_refused():
    def prepare(**options: str) -> str:
        return ""

    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "options")


def test_positional_only_parameters_are_refused():
    def prepare(start: str, /) -> str:
        return start

    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "start")


@pytest.mark.parametrize(
    "annotation",
    [dict[str, int], Custom, tuple[int, str], list[bool], list[Custom], set[str]],
    ids=["dict", "custom-class", "tuple", "list-of-bool", "list-of-custom", "set"],
)
def test_parameter_types_that_cannot_be_flags_are_refused(annotation):
    def prepare(value):
        return value

    prepare.__annotations__["value"] = annotation
    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "value")
    assert error.hint is not None


def test_custom_class_in_result_is_refused():
    def convert(item: Annotated[Custom, Result(step="prepare")]) -> str:
        return ""

    error = refused(convert)
    assert (error.task, error.param) == ("convert", "item")
    assert "Custom" in str(error.value)


def test_custom_class_as_return_type_is_refused():
    def prepare() -> Custom:
        return Custom()

    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "return")


def test_dict_is_fine_as_data_between_tasks():
    def convert(meta: Annotated[dict[str, int], Result(step="prepare")]) -> dict[str, int]:
        return meta

    spec = spec_of(convert)
    assert spec.inputs[0].type == from_annotation(dict[str, int])
    assert spec.returns == from_annotation(dict[str, int])


def test_unresolvable_annotation_is_a_definition_error():
    def prepare(start: "Undefined") -> str:  # type: ignore[name-defined]  # noqa: F821
        return ""

    error = refused(prepare)
    assert error.task == "prepare"


def test_annotated_run_dir_with_param_is_refused():
    def prepare(run_dir: Annotated[RunDir, Param()]) -> str:
        return ""

    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "run_dir")
    assert "annotates RunDir" in error.problem


def test_annotated_run_dir_with_param_and_default_names_the_annotation():
    def prepare(run_dir: Annotated[RunDir, Param()] = RunDir()) -> str:
        return ""

    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "run_dir")
    assert "annotates RunDir" in error.problem


def test_two_run_dir_parameters_are_refused():
    def prepare(first: RunDir = RunDir(), second: RunDir = RunDir()) -> str:
        return ""

    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "second")


@pytest.mark.parametrize("annotation", [Path, str, Annotated[Path, Param()]])
def test_run_dir_default_on_another_annotation_is_refused(annotation):
    def prepare(work=RunDir()):
        return work

    prepare.__annotations__["work"] = annotation
    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "work")
    assert error.hint == "write work: RunDir = RunDir()"


def test_run_dir_without_default_is_still_injected():
    def prepare(run_dir: RunDir) -> str:
        return ""

    spec = spec_of(prepare)
    assert spec.run_dir_arg == "run_dir"
    assert spec.params == ()


def test_result_with_a_default_is_refused():
    def convert(item: Annotated[str, Result(step="prepare")] = "x") -> str:
        return item

    error = refused(convert)
    assert (error.task, error.param) == ("convert", "item")


def test_result_reading_its_own_task_is_refused():
    def convert(item: Annotated[str, Result(step="convert")]) -> str:
        return item

    error = refused(convert)
    assert (error.task, error.param) == ("convert", "item")


def test_marker_class_instead_of_instance_is_refused():
    def prepare(start: Annotated[str, Param]) -> str:
        return start

    error = refused(prepare)
    assert (error.task, error.param) == ("prepare", "start")


def test_two_markers_are_refused():
    def convert(item: Annotated[str, Param(), Result(step="prepare")]) -> str:
        return item

    error = refused(convert)
    assert (error.task, error.param) == ("convert", "item")


def test_other_annotated_metadata_is_ignored():
    def prepare(start: Annotated[str, "unit: day", Param(help="Start")]) -> str:
        return start

    (param,) = spec_of(prepare).params
    assert (param.type, param.help) == (STR, "Start")


def test_upstream_lists_data_sources_then_after_without_repeats():
    flow = Flow("f")

    @flow.job(after=["cleanup", "b"])
    def merge(
        x: Annotated[list[str], Result(steps=["b", "a"])],
        y: Annotated[str, Result(step="a")],
    ) -> str:
        return ""

    assert flow.tasks["merge"].upstream == ("b", "a", "cleanup")
