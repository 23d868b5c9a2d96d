"""Resources: time, memory, counts and sbatch options are checked and normalized at decoration."""

from typing import Any

import pytest

from reflow import DefinitionError, Workflow
from reflow.definition.resources import (
    Resources,
    build_resources,
    format_mem,
    format_time,
    parse_mem,
    parse_time,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("01:00:00", 3600),
        ("00:05:00", 300),
        ("00:00:30", 30),
        ("100:00:00", 360000),
        ("1-00:00:00", 86400),
        ("2-12", 2 * 86400 + 12 * 3600),
        ("1-02:03", 86400 + 2 * 3600 + 3 * 60),
        ("1-02:03:04", 86400 + 2 * 3600 + 3 * 60 + 4),
        (" 00:10:00 ", 600),
        (90, 5400),
    ],
)
def test_parse_time_reads_slurm_time_limits(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "1:00",
        "60",
        "00:61:00",
        "00:00:60",
        "1-24:00:00",
        "00:00:00",
        "abc",
        "",
        "1h",
        0,
        -5,
        True,
        1.5,
        None,
    ],
    ids=lambda v: repr(v),
)
def test_parse_time_refuses_ambiguous_or_invalid_limits(value):
    with pytest.raises(DefinitionError) as info:
        parse_time(value, task="prepare")
    assert (info.value.task, info.value.param, info.value.value) == ("prepare", "time", value)


@pytest.mark.parametrize("seconds", [1, 59, 60, 3600, 86399, 86400, 90061, 10 * 86400 + 5])
def test_format_time_round_trips_through_parse_time(seconds):
    assert parse_time(format_time(seconds)) == seconds


def test_format_time_writes_days_only_when_needed():
    assert format_time(3600) == "01:00:00"
    assert format_time(90061) == "1-01:01:01"


@pytest.mark.parametrize(
    ("text", "mem_mb"),
    [
        ("4G", 4096),
        ("4g", 4096),
        ("4GB", 4096),
        ("4GiB", 4096),
        ("500M", 500),
        ("500", 500),
        ("1.5G", 1536),
        ("2T", 2 * 1024 * 1024),
        ("512K", 1),
        ("2048K", 2),
        (100, 100),
    ],
)
def test_parse_mem_reads_sizes_in_megabytes(text, mem_mb):
    assert parse_mem(text) == mem_mb


@pytest.mark.parametrize(
    "value",
    ["4GG", "G", "", "-1G", "4 X", "0", "0M", 0, -1, True, 1.5, None],
    ids=lambda v: repr(v),
)
def test_parse_mem_refuses_what_is_not_a_size(value):
    with pytest.raises(DefinitionError) as info:
        parse_mem(value, task="convert")
    assert (info.value.task, info.value.param, info.value.value) == ("convert", "mem", value)


@pytest.mark.parametrize(("mem_mb", "text"), [(1024, "1G"), (4096, "4G"), (1536, "1536M")])
def test_format_mem_writes_what_sbatch_reads(mem_mb, text):
    assert format_mem(mem_mb) == text
    assert parse_mem(text) == mem_mb


def test_build_resources_normalizes_every_field():
    resources = build_resources(
        task="t",
        cpus=4,
        mem="2G",
        time="01:30:00",
        gpus="a100:2",
        partition="compute",
        account="bm1159",
        qos="normal",
        constraint="haswell|broadwell",
        extra=["--exclusive"],
        array_limit=10,
    )
    assert resources == Resources(
        cpus=4,
        mem_mb=2048,
        time_s=5400,
        gpus="a100:2",
        partition="compute",
        account="bm1159",
        qos="normal",
        constraint="haswell|broadwell",
        extra=("--exclusive",),
        array_limit=10,
    )


def test_build_resources_without_options_sets_nothing():
    assert build_resources() == Resources()


def test_gpus_as_a_count_becomes_text():
    assert build_resources(gpus=2).gpus == "2"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("cpus", 0),
        ("cpus", -1),
        ("cpus", True),
        ("cpus", 1.5),
        ("cpus", "4"),
        ("gpus", 0),
        ("gpus", "0"),
        ("gpus", "a100:0"),
        ("gpus", True),
        ("gpus", -1),
        ("array_limit", 0),
        ("partition", "a b"),
        ("partition", ""),
        ("account", "a,b"),
        ("qos", 3),
        ("constraint", ""),
        ("constraint", "a\nb"),
    ],
    ids=lambda v: repr(v),
)
def test_build_resources_refuses_bad_values(option, value):
    kwargs: dict[str, Any] = {option: value}
    with pytest.raises(DefinitionError) as info:
        build_resources(task="t", **kwargs)
    assert (info.value.task, info.value.param, info.value.value) == ("t", option, value)


@pytest.mark.parametrize("item", ["-x", "exclusive", "+exclusive"])
def test_extra_options_must_start_with_two_dashes(item):
    with pytest.raises(DefinitionError) as info:
        build_resources(task="t", extra=["--exclusive", item])
    assert (info.value.task, info.value.param, info.value.value) == ("t", "extra", item)


@pytest.mark.parametrize("extra", ["--exclusive", ["--a", ""], [3]], ids=repr)
def test_extra_must_be_a_list_of_option_strings(extra):
    with pytest.raises(DefinitionError) as info:
        build_resources(task="t", extra=extra)
    assert info.value.param == "extra"
    assert info.value.value == extra


def test_over_takes_unset_fields_from_the_base_and_appends_extra():
    base = Resources(cpus=1, mem_mb=1000, partition="compute", extra=("--a",))
    mine = Resources(cpus=8, extra=("--b",))
    merged = mine.over(base)
    assert (merged.cpus, merged.mem_mb, merged.partition) == (8, 1000, "compute")
    assert merged.extra == ("--a", "--b")
    assert merged.time_s is None


@pytest.mark.parametrize(
    ("option", "value"),
    [("time", "1:00"), ("mem", "4GG"), ("cpus", 0), ("gpus", 0), ("extra", ["-x"])],
)
def test_decorator_reports_bad_resources_with_the_task_name(option, value):
    wf = Workflow("w")
    options: dict[str, Any] = {option: value}

    def prepare() -> str:
        return ""

    with pytest.raises(DefinitionError) as info:
        wf.job(**options)(prepare)
    assert (info.value.task, info.value.param) == ("prepare", option)
    assert info.value.value == (value[0] if option == "extra" else value)
    assert wf.tasks == {}


def test_decorator_stores_normalized_resources():
    wf = Workflow("w")

    @wf.job(cpus=2, mem="1G", time="00:05:00")
    def prepare() -> str:
        return ""

    resources = wf.tasks["prepare"].resources
    assert (resources.cpus, resources.mem_mb, resources.time_s) == (2, 1024, 300)


@pytest.mark.parametrize(
    "extra", [["--array=0-3"], ["--dependency=afterok:1"], ["--output=x.log"], ["--x\n#SBATCH --y"]]
)
def test_extra_options_that_reflow_sets_or_that_break_lines_are_refused(extra):
    with pytest.raises(DefinitionError) as caught:
        build_resources(task="t", extra=extra)
    assert (caught.value.task, caught.value.param, caught.value.value) == ("t", "extra", extra[0])
