"""Tests of the sbatch script renderer: golden scripts, refusals, and quoting round trips."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reflow.definition.environment import Environment
from reflow.definition.errors import SubmissionError
from reflow.definition.resources import Resources
from reflow.running.executors.base import BatchRequest
from reflow.running.executors.slurm_script import job_comment, job_name, output_path, render
from reflow.running.process import run_command

_C_SPACE = " \t\n\v\f\r"


def make_request(**changes: object) -> BatchRequest:
    request = BatchRequest(
        run_id="r1",
        workflow="demo",
        task="convert",
        batch_id="b1",
        elements=(0, 1, 2),
        resources=Resources(),
        command=("/usr/bin/python3", "-m", "reflow.running.worker", "--run-dir", "/runs/demo"),
        workdir=Path("/runs/demo"),
        log_dir=Path("/runs/demo/r1/logs"),
        script_path=Path("/runs/demo/r1/scripts/convert.b1.sbatch"),
    )
    return dataclasses.replace(request, **changes)  # type: ignore[arg-type]


def sbatch_arguments(script: str) -> list[str]:
    """Read the ``#SBATCH`` arguments the way sbatch 22.05 does (opt.c ``_get_argument``)."""
    arguments: list[str] = []
    for line in script.split("\n")[1:]:
        if not line.startswith("#SBATCH"):
            break
        arguments += _line_arguments(line[len("#SBATCH") :])
    return arguments


def _line_arguments(text: str) -> list[str]:
    found: list[str] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _C_SPACE:
            pos += 1
        if pos == len(text) or text[pos] == "#":
            return found
        chars: list[str] = []
        quote = ""
        escaped = False
        while pos < len(text) and (quote or text[pos] not in _C_SPACE):
            char = text[pos]
            pos += 1
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
                continue
            elif quote:
                if char == quote:
                    quote = ""
                    continue
            elif char in "\"'":
                quote = char
                continue
            elif char == "#":
                found.append("".join(chars))
                return found
            chars.append(char)
        assert not quote, f"unterminated quote in #SBATCH line {text!r}"
        found.append("".join(chars))


def option_values(script: str, option: str) -> list[str]:
    prefix = option + "="
    return [arg[len(prefix) :] for arg in sbatch_arguments(script) if arg.startswith(prefix)]


GOLDEN_CASES = {
    "minimal": make_request(elements=(0,)),
    "full": make_request(
        resources=Resources(
            cpus=4,
            mem_mb=4096,
            time_s=5400,
            gpus="a100:2",
            partition="compute",
            account="proj-42",
            qos="normal",
            constraint="haswell|broadwell",
            extra=("--exclusive", "--mail-type=END,FAIL"),
            array_limit=10,
        ),
    ),
    "awkward_values": make_request(
        workflow="demo",
        task="convert",
        resources=Resources(mem_mb=1500, time_s=2 * 86400 + 61, extra=("--comment=two words",)),
        workdir=Path('/scratch/my project/it\'s "here" #1'),
        log_dir=Path("/scratch/my project/100% logs"),
        command=(
            *("/opt/py env/bin/python", "-m", "reflow.running.worker", "--name", "-x; rm -rf /"),
            "hello $(whoami) `id` 'quoted' \"double\"\nsecond line",
        ),
    ),
    "environment": make_request(
        environment=Environment(
            setup=("module load cdo", "source '/sw/my env/bin/activate'"),
            env=(("EMPTY", ""), ("HOSTILE", "$(rm -rf ~) '\"; echo x\na\rb"), ("N", "4")),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_render_matches_golden_script(name, golden):
    request = GOLDEN_CASES[name]
    worker_args = ("--array-offset", "4") if name == "full" else ()
    array = "0-99,120,200-250" if name == "full" else "0"
    golden(f"slurm_script/{name}.sbatch", render(request, array=array, worker_args=worker_args))


def test_render_writes_every_resource_as_an_sbatch_option():
    script = render(GOLDEN_CASES["full"], array="0-3", worker_args=())
    arguments = sbatch_arguments(script)
    assert arguments == [
        "--job-name=convert.demo",
        "--comment=reflow:r1",
        "--array=0-3%10",
        "--cpus-per-task=4",
        "--mem=4G",
        "--time=01:30:00",
        "--gpus=a100:2",
        "--partition=compute",
        "--account=proj-42",
        "--qos=normal",
        "--constraint=haswell|broadwell",
        "--exclusive",
        "--mail-type=END,FAIL",
        "--output=/runs/demo/r1/logs/convert.%A_%a.out",
        "--chdir=/runs/demo",
    ]


def test_render_without_array_limit_has_no_throttle():
    script = render(make_request(), array="0-2,7")
    assert option_values(script, "--array") == ["0-2,7"]


def test_render_escapes_percent_in_log_dir_for_sbatch_filename_patterns():
    script = render(make_request(log_dir=Path("/runs/50%/logs")), array="0")
    assert option_values(script, "--output") == ["/runs/50%%/logs/convert.%A_%a.out"]


def test_render_quotes_extra_option_with_spaces():
    request = make_request(resources=Resources(extra=("--comment=a b 'c'",)))
    assert "--comment=a b 'c'" in sbatch_arguments(render(request, array="0"))


def test_render_ends_with_exec_of_command_and_worker_args():
    script = render(make_request(command=("/bin/prog", "a b")), array="0", worker_args=("--x",))
    assert script.endswith("\nexec -- /bin/prog 'a b' --x\n")


@pytest.mark.parametrize("field", ["workdir", "log_dir"])
def test_render_refuses_newline_in_sbatch_path(field):
    request = make_request(**{field: Path("/runs/line\nbreak")})
    with pytest.raises(SubmissionError) as info:
        render(request, array="0")
    assert info.value.task == "convert"
    assert info.value.param in {"chdir", "output"}


def test_render_refuses_newline_in_extra_option():
    request = make_request(resources=Resources(extra=("--comment=a\nb",)))
    with pytest.raises(SubmissionError) as info:
        render(request, array="0")
    assert info.value.value == "--comment=a\nb"


def test_render_refuses_backslash_in_log_dir():
    with pytest.raises(SubmissionError) as info:
        render(make_request(log_dir=Path("/runs/a\\b")), array="0")
    assert info.value.param == "log_dir"


def test_render_refuses_nul_in_argument():
    with pytest.raises(SubmissionError) as info:
        render(make_request(), array="0", worker_args=("a\x00b",))
    assert info.value.param == "command"


def test_render_refuses_empty_command():
    with pytest.raises(SubmissionError):
        render(make_request(command=()), array="0")


@pytest.mark.parametrize("array", ["", "0-", "a", "0,,1", "0-3%2", "-1"])
def test_render_rejects_malformed_array_spec_as_a_bug(array):
    with pytest.raises(ValueError, match="array"):
        render(make_request(), array=array)


def test_output_path_follows_the_sbatch_output_pattern():
    path = output_path(Path("/runs/logs"), "convert", "1234_7")
    assert path == Path("/runs/logs/convert.1234_7.out")


def test_jobs_are_named_task_first_and_carry_the_run_id_as_comment():
    script = render(make_request(run_id="demo-20250101-120000-ab12cd"), array="0-2")
    assert option_values(script, "--job-name") == ["convert.demo"]
    assert option_values(script, "--comment") == ["reflow:demo-20250101-120000-ab12cd"]
    assert job_name("demo", "convert")[:8] != job_name("demo", "concat")[:8]
    assert job_comment("r1") == "reflow:r1"


def test_each_array_task_writes_one_output_file_with_stderr_joined():
    arguments = sbatch_arguments(render(make_request(), array="0-2"))
    assert [a for a in arguments if a.startswith(("--output", "--error", "-o", "-e"))] == [
        "--output=/runs/demo/r1/logs/convert.%A_%a.out"
    ]


# --- quoting round trips ----------------------------------------------------------------

_AWKWARD = st.sampled_from(
    [
        "",
        "-",
        "--help",
        "-n",
        "$(id)",
        "`id`",
        "'",
        '"',
        "\\",
        "#",
        "a b",
        "\n",
        "\r\n",
        "\t",
        "é",
        "💥",
        "$HOME",
        "!!",
        "*",
        "~",
        ";",
        "&&",
        "|",
        ">",
        "%",
        "%A",
        "\x7f",
        "\u2028",
    ]
)
_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=20,
)
_VALUE = st.lists(st.one_of(_AWKWARD, _TEXT), max_size=4).map("".join)


def _echo_script(script: str) -> str:
    """Shadow ``exec`` with a function printing its arguments."""
    shebang, rest = script.split("\n", 1)
    printer = "exec() { shift; printf '%s\\0' \"$@\"; }"
    return "\n".join([shebang, printer, rest])


def _run_bash(tmp_path: Path, script: str) -> list[str]:
    path = tmp_path / "script.sh"
    path.write_text(script, encoding="utf-8")
    syntax = run_command(["bash", "-n", str(path)], timeout_s=20)
    assert syntax.returncode == 0, syntax.stderr
    ran = run_command(["bash", str(path)], timeout_s=20, env={"PATH": "/usr/bin:/bin"})
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.split("\0")[:-1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    args=st.lists(_VALUE, max_size=4),
    workdir=_VALUE,
    log_dir=_VALUE,
    extra=_VALUE,
)
def test_render_quotes_arbitrary_text_so_that_it_comes_back_exactly(
    tmp_path: Path,
    args: list[str],
    workdir: str,
    log_dir: str,
    extra: str,
) -> None:
    request = make_request(
        workdir=Path("/w") / workdir,
        log_dir=Path("/l") / log_dir,
        resources=Resources(extra=("--comment=" + extra,)),
    )
    sbatch_values = [str(request.workdir), str(request.log_dir), extra]
    if any("\n" in value for value in sbatch_values) or "\\" in str(request.log_dir):
        with pytest.raises(SubmissionError):
            render(request, array="0-3", worker_args=args)
        return
    script = render(request, array="0-3", worker_args=args)
    assert "\r\n" not in script
    assert option_values(script, "--chdir") == [str(request.workdir)]
    pattern = str(request.log_dir / "convert").replace("%", "%%") + ".%A_%a"
    assert option_values(script, "--output") == [pattern + ".out"]
    assert option_values(script, "--comment") == ["reflow:r1", extra]
    printed = _run_bash(tmp_path, _echo_script(script))
    assert printed == [*request.command, *args]
