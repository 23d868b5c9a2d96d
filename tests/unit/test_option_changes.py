"""What a retry may take from ``--set`` and the flow file, checked without a run."""

# No ``from __future__ import annotations``: the flows below annotate with local names.

from typing import Annotated, Any

import pytest

from reflow import Param, Result, Workflow
from reflow.definition.description import describe
from reflow.definition.errors import UsageError
from reflow.running.dispatch.option_changes import check_overrides, identity_changes, parse_set


def make_flow(
    *, mem: str = "1G", version: str = "1", help_text: str = "n", count_type: Any = int
) -> Workflow:
    wf = Workflow("demo")
    two = count_type(2)

    @wf.job()
    def items(count: Annotated[count_type, Param(help=help_text)] = two) -> list[int]:
        return list(range(int(count)))

    @wf.array_job(mem=mem, version=version)
    def convert(item: Annotated[int, Result(step="items")]) -> int:
        return item

    return wf


def test_set_items_become_options_by_task_with_whole_numbers_and_extra_collected() -> None:
    found = parse_set(
        [
            "convert.mem=8G",
            "convert.cpus=4",
            "convert.time=90",
            "convert.extra=--exclusive",
            "convert.extra=--mail-type=END,FAIL",
            "items.time=01:00:00",
        ]
    )
    assert found == {
        "convert": {
            "mem": "8G",
            "cpus": 4,
            "time": 90,
            "extra": ["--exclusive", "--mail-type=END,FAIL"],
        },
        "items": {"time": "01:00:00"},
    }


@pytest.mark.parametrize("item", ["x", "convert=1G", "convert.mem", ".mem=1G", "convert.=1G"])
def test_a_set_item_that_is_not_task_option_value_is_refused(item: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_set([item])
    assert (refused.value.param, refused.value.value) == ("--set", item)


@pytest.mark.parametrize(
    ("overrides", "value", "suggestion"),
    [
        ({"convrt": {"mem": "1G"}}, "convrt", "convert"),
        ({"convert": {"memory": "1G"}}, "memory", "mem"),
        ({"convert": {"mem": "lots"}}, "lots", None),
        ({"convert": {"cpus": 0}}, 0, None),
        ({"convert": {"extra": ["--array=1-3"]}}, "--array=1-3", None),
        ({"convert": {"version": "2"}}, "version", None),
    ],
)
def test_an_override_is_checked_as_the_decorator_checks_it(
    overrides: dict[str, Any], value: Any, suggestion: str | None
) -> None:
    with pytest.raises(UsageError) as refused:
        check_overrides(make_flow().graph(), overrides, label="--set")
    error = refused.value
    assert (error.param, error.value, error.suggestion) == ("--set", value, suggestion)


def test_overrides_are_normalized_to_resource_fields() -> None:
    checked = check_overrides(
        make_flow().graph(),
        {"convert": {"mem": "1.5G", "time": "1-00:00:00", "extra": ["--exclusive"]}},
        label="resources=",
    )
    assert checked == {"convert": {"mem_mb": 1536, "time_s": 86400, "extra": ("--exclusive",)}}


def test_resources_help_and_defaults_are_no_identity_change() -> None:
    recorded = describe(make_flow().graph())
    assert identity_changes(recorded, make_flow(mem="8G", help_text="how many").graph()) == []


def test_version_and_parameter_type_changes_are_named_per_task() -> None:
    recorded = describe(make_flow().graph())
    now = make_flow(version="2", count_type=float).graph()
    assert identity_changes(recorded, now) == ["convert (version)", "items (parameters)"]
