"""The rule of automatic retries: what a failed attempt's next submission asks for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reflow.definition.errors import DefinitionError, FlowDefinitionError
from reflow.definition.resources import Resources
from reflow.definition.retry_policy import RetryPolicy, build_retry_policy
from reflow.running.dispatch.retrier import history_line
from reflow.running.dispatch.retry_rule import decide, submission_resources
from reflow.running.executors.base import FailureReason, PartitionLimits
from reflow.running.executors.slurm_query import parse_partition_limits, slurm_time_s
from reflow.running.store.records import Attempt, Ended
from reflow.running.store.states import InstanceState
from reflow.workflow import Workflow

R = FailureReason
USED = Resources(mem_mb=256, time_s=60, partition="debug")
NO_CAPS = PartitionLimits()


def attempt(reason: FailureReason, number: int = 1, **kwargs: object) -> dict[str, object]:
    decision = decide(
        reason=reason,
        classes=kwargs.pop("classes", ()),  # type: ignore[arg-type]
        used=kwargs.pop("used", USED),  # type: ignore[arg-type]
        policy=kwargs.pop("policy", RetryPolicy()),  # type: ignore[arg-type]
        retries=kwargs.pop("retries", 2),  # type: ignore[arg-type]
        attempt=number,
        limits=kwargs.pop("limits", NO_CAPS),  # type: ignore[arg-type]
    )
    return {"retry": decision.retry, "delay": decision.delay_s, **decision.resources}


@pytest.mark.parametrize("reason", [R.NODE_FAIL, R.BOOT_FAIL, R.PREEMPTED, R.LOST])
def test_a_failure_of_the_cluster_goes_out_again_at_once_as_it_was(reason: R) -> None:
    assert attempt(reason) == {"retry": True, "delay": 0.0, "mem_mb": 256, "time_s": 60}


def test_out_of_memory_doubles_the_memory_up_to_the_lower_cap() -> None:
    assert attempt(R.OUT_OF_MEMORY)["mem_mb"] == 512
    assert attempt(R.OUT_OF_MEMORY, policy=RetryPolicy(mem_factor=1.5))["mem_mb"] == 384
    capped = RetryPolicy(max_mem_mb=400)
    assert attempt(R.OUT_OF_MEMORY, policy=capped)["mem_mb"] == 400
    node = PartitionLimits(mem_mb=300)
    assert attempt(R.OUT_OF_MEMORY, policy=capped, limits=node)["mem_mb"] == 300


def test_at_the_cap_or_without_a_memory_to_raise_there_is_no_retry() -> None:
    at_cap = Resources(mem_mb=400)
    assert not attempt(R.OUT_OF_MEMORY, used=at_cap, policy=RetryPolicy(max_mem_mb=400))["retry"]
    assert not attempt(R.OUT_OF_MEMORY, used=Resources())["retry"]


def test_timeout_doubles_the_time_limit_in_whole_minutes_up_to_max_time() -> None:
    assert attempt(R.TIMEOUT)["time_s"] == 120
    assert attempt(R.TIMEOUT, used=Resources(time_s=90), policy=RetryPolicy())["time_s"] == 180
    odd = attempt(R.TIMEOUT, used=Resources(time_s=70), policy=RetryPolicy(time_factor=1.5))
    assert odd["time_s"] == 120  # 105 s rounded up to whole minutes
    limited = attempt(R.TIMEOUT, limits=PartitionLimits(time_s=90))
    assert limited["time_s"] == 90


def test_an_exception_is_retried_only_when_listed_and_later_each_time() -> None:
    classes = ("builtins.FileNotFoundError", "builtins.OSError", "builtins.Exception")
    assert not attempt(R.EXCEPTION, classes=classes)["retry"]
    policy = RetryPolicy(retry_on=("builtins.OSError",), retry_delay_s=30)
    delays = [attempt(R.EXCEPTION, n, classes=classes, policy=policy)["delay"] for n in (1, 2)]
    assert delays == [30, 60]


@pytest.mark.parametrize("reason", [R.CANCELLED, R.EXIT_CODE, R.SUBMISSION])
def test_cancel_exit_codes_and_refusals_are_never_retried(reason: R) -> None:
    assert not attempt(reason)["retry"]


def test_no_attempt_beyond_the_retries() -> None:
    assert attempt(R.LOST, 2, retries=2)["retry"]
    assert not attempt(R.LOST, 3, retries=2)["retry"]
    assert not attempt(R.LOST, 1, retries=0)["retry"]


def test_a_submission_asks_for_at_least_the_last_attempts_resources() -> None:
    task = Resources(mem_mb=256, time_s=600, cpus=2)
    assert submission_resources(task, {}) == task
    raised = submission_resources(task, {"mem_mb": 1024, "time_s": 60})
    assert (raised.mem_mb, raised.time_s, raised.cpus) == (1024, 600, 2)
    assert submission_resources(Resources(), {"mem_mb": 512}).mem_mb == 512


def test_the_options_are_read_and_checked_at_decoration() -> None:
    wf = Workflow("w")

    @wf.job(retries=3, max_mem="2G", max_time=90, retry_on=(OSError,), retry_delay=0.5)
    def a() -> int:
        return 1

    assert wf.graph().task("a").retry == RetryPolicy(
        retries=3,
        max_mem_mb=2048,
        max_time_s=5400,
        retry_on=("builtins.OSError",),
        retry_delay_s=0.5,
    )
    with pytest.raises(FlowDefinitionError) as many:
        Workflow("v").job(retries=-1, mem_factor=0.5, retry_on=("OSError",))(a)  # type: ignore[arg-type]
    assert [e.param for e in many.value.errors] == ["retries", "mem_factor", "retry_on"]
    with pytest.raises(DefinitionError) as one:
        build_retry_policy(task="a", options={"max_mem": "lots"})
    assert (one.value.param, one.value.value) == ("max_mem", "lots")
    assert "max_mem='lots'" in str(one.value)


def test_sinfo_gives_the_partitions_memory_per_node_and_time_limit() -> None:
    text = "debug*|7950|infinite\nshort|4000+|30:00\nshort|8000|30:00\nlong|64000|2-00:00:00\n"
    assert parse_partition_limits(text, None) == PartitionLimits(mem_mb=7950, time_s=None)
    assert parse_partition_limits(text, "short") == PartitionLimits(mem_mb=4000, time_s=1800)
    assert parse_partition_limits(text, "long") == PartitionLimits(mem_mb=64000, time_s=172800)
    assert parse_partition_limits("", "gpu") == PartitionLimits()
    assert [slurm_time_s(t) for t in ("5", "1:00:00", "1-12", "UNLIMITED")] == [
        300,
        3600,
        129600,
        None,
    ]


def test_a_final_failure_sums_up_the_attempts_and_names_the_fix() -> None:
    def tried(mem_mb: int, reason: str | None) -> Attempt:
        return Attempt(
            task="t", element=0, attempt=1, job_id="1_0", resources={"mem_mb": mem_mb},
            state="failed" if reason else "submitted", reason=reason, error=None,
            submitted=0.0, begin=None, ended=None,
        )  # fmt: skip

    failed = Ended(
        task="t", element=0, batch="b", state=InstanceState.FAILED,
        started=None, ended=None, reason="out_of_memory", error="OUT_OF_MEMORY (exit 0:125)",
    )  # fmt: skip
    attempts = [tried(256, "out_of_memory"), tried(512, "out_of_memory"), tried(1024, None)]
    assert history_line(failed, attempts, "", 3) == (
        "OUT_OF_MEMORY at 256M, 512M, 1G; retries ran out; raise mem= or retries="
    )
    lost = replace(failed, reason="lost", error="the job vanished")
    assert history_line(lost, attempts, "", 3) == "the job vanished (after 3 attempts)"
    first = [tried(256, None)]
    unset = replace(failed, error="OUT_OF_MEMORY")
    assert history_line(unset, [], "no mem= to raise; set mem=", 1) == (
        "OUT_OF_MEMORY; no mem= to raise; set mem="
    )
    assert history_line(failed, first, "at the cap; raise max_mem= or mem=", 1) == (
        "OUT_OF_MEMORY at 256M; at the cap; raise max_mem= or mem="
    )
