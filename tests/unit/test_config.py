from __future__ import annotations

from pathlib import Path

import pytest

from reflow.definition.errors import ConfigError
from reflow.definition.resources import Resources
from reflow.running.config import Config, default_config_path, load_config

SPEC_EXAMPLE = """
[executor]
partition = "compute"
account = "bm1159"
python = "/sw/spack-levante/mambaforge-23.1/bin/python"
mode = "sbatch"

[defaults]
run_dir = "/scratch/k204221/reflow"

[server]
url = "https://flow.dkrz.de"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(env=env or {}, path=write(tmp_path, text))


def test_no_file_and_no_env_gives_an_empty_config(tmp_path):
    assert load_config(env={"HOME": str(tmp_path)}) == Config()


def test_spec_example_file_is_read_with_sbatch_meaning_slurm(tmp_path):
    path = write(tmp_path, SPEC_EXAMPLE)
    config = load_config(env={"REFLOW_CONFIG": str(path)})
    assert config.mode == "slurm"
    assert config.resources == Resources(partition="compute", account="bm1159")
    assert config.python == "/sw/spack-levante/mambaforge-23.1/bin/python"
    assert config.run_dir == Path("/scratch/k204221/reflow")
    assert config.server_url == "https://flow.dkrz.de"
    assert config.path == path
    assert config.source_of("executor.partition") == f"{path} [executor] partition"
    assert config.source_of("server.url") == f"{path} [server] url"
    assert config.source_of("executor.mem") is None


def test_every_executor_key_is_read_from_the_file(tmp_path):
    config = load_text(
        tmp_path,
        """
        [executor]
        mode = "dry-run"
        qos = "normal"
        constraint = "a100|h100"
        cpus = 4
        mem = "8G"
        time = "01:30:00"
        gpus = "a100:2"
        extra = ["--exclusive"]
        max_array_size = 1000
        submit_budget = 5000
        local_slots = 3
        dispatcher_time = 10
        dispatcher_mem = 512
        dispatcher_partition = "shared"
        """,
    )
    assert config.mode == "dry-run"
    assert config.resources == Resources(
        qos="normal",
        constraint="a100|h100",
        cpus=4,
        mem_mb=8192,
        time_s=5400,
        gpus="a100:2",
        extra=("--exclusive",),
    )
    assert (config.max_array_size, config.submit_budget, config.local_slots) == (1000, 5000, 3)
    assert config.dispatcher == Resources(time_s=600, mem_mb=512, partition="shared")
    assert dict(config.sources).keys() >= {"executor.dispatcher_mem", "executor.extra"}


@pytest.mark.parametrize(
    ("var", "text", "attribute", "expected"),
    [
        ("REFLOW_MODE", "local", "mode", "local"),
        ("REFLOW_MODE", "SBATCH", "mode", "slurm"),
        ("REFLOW_MODE", "dry-run", "mode", "dry-run"),
        ("REFLOW_PYTHON", "/opt/py/bin/python3", "python", "/opt/py/bin/python3"),
        ("REFLOW_PYTHON", "python3", "python", "python3"),
        ("REFLOW_RUN_DIR", "/scratch/runs", "run_dir", Path("/scratch/runs")),
        ("REFLOW_SERVER_URL", "http://localhost:8000", "server_url", "http://localhost:8000"),
        ("REFLOW_MAX_ARRAY_SIZE", "1001", "max_array_size", 1001),
        ("REFLOW_SUBMIT_BUDGET", " 200 ", "submit_budget", 200),
        ("REFLOW_LOCAL_SLOTS", "8", "local_slots", 8),
        ("REFLOW_MIN_TASK_TIME", "15", "min_task_time_s", 15 * 60),
        ("REFLOW_MIN_TASK_TIME", "00:20:00", "min_task_time_s", 20 * 60),
        ("REFLOW_RETRIES", "0", "retries", 0),
        ("REFLOW_RETRIES", "5", "retries", 5),
    ],
)
def test_environment_sets_plain_values(tmp_path, var, text, attribute, expected):
    config = load_config(env={"HOME": str(tmp_path), var: text})
    assert getattr(config, attribute) == expected
    assert var in dict(config.sources).values()


@pytest.mark.parametrize(
    ("var", "text", "expected"),
    [
        ("REFLOW_PARTITION", "gpu", Resources(partition="gpu")),
        ("REFLOW_ACCOUNT", "bm1159", Resources(account="bm1159")),
        ("REFLOW_QOS", "high", Resources(qos="high")),
        ("REFLOW_CONSTRAINT", "haswell|broadwell", Resources(constraint="haswell|broadwell")),
        ("REFLOW_CPUS", "16", Resources(cpus=16)),
        ("REFLOW_MEM", "1.5G", Resources(mem_mb=1536)),
        ("REFLOW_TIME", "2-00:00:00", Resources(time_s=2 * 86400)),
        ("REFLOW_TIME", "90", Resources(time_s=90 * 60)),
        ("REFLOW_GPUS", "2", Resources(gpus="2")),
    ],
)
def test_environment_sets_task_resources(tmp_path, var, text, expected):
    config = load_config(env={"HOME": str(tmp_path), var: text})
    assert config.resources == expected
    assert config.path is None


def test_empty_environment_variables_count_as_unset(tmp_path):
    env = {"HOME": str(tmp_path), "REFLOW_MEM": "", "REFLOW_MODE": "  ", "REFLOW_CONFIG": ""}
    assert load_config(env=env) == Config()


def test_environment_wins_over_file_and_says_so(tmp_path):
    path = write(tmp_path, '[executor]\nmem = "4G"\npartition = "compute"\n')
    config = load_config(env={"REFLOW_MEM": "8G"}, path=path)
    assert config.resources == Resources(mem_mb=8192, partition="compute")
    assert config.source_of("executor.mem") == "REFLOW_MEM"
    assert config.source_of("executor.partition") == f"{path} [executor] partition"


def test_default_path_honours_xdg_config_home(tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "reflow").mkdir(parents=True)
    write(xdg / "reflow", '[server]\nurl = "https://x.example"\n')
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(xdg)}
    assert default_config_path(env) == xdg / "reflow" / "config.toml"
    assert load_config(env=env).server_url == "https://x.example"


@pytest.mark.parametrize("xdg", [None, "", "relative/dir"])
def test_default_path_falls_back_to_home_config(tmp_path, xdg):
    env = {"HOME": str(tmp_path)}
    if xdg is not None:
        env["XDG_CONFIG_HOME"] = xdg
    (tmp_path / ".config" / "reflow").mkdir(parents=True)
    write(tmp_path / ".config" / "reflow", "[executor]\ncpus = 2\n")
    assert default_config_path(env) == tmp_path / ".config" / "reflow" / "config.toml"
    assert load_config(env=env).resources.cpus == 2


def test_reflow_config_overrides_the_default_location(tmp_path):
    (tmp_path / ".config" / "reflow").mkdir(parents=True)
    write(tmp_path / ".config" / "reflow", "[executor]\ncpus = 2\n")
    named = write(tmp_path, "[executor]\ncpus = 7\n", name="other.toml")
    config = load_config(env={"HOME": str(tmp_path), "REFLOW_CONFIG": str(named)})
    assert config.resources.cpus == 7
    assert config.path == named


def test_tilde_expands_against_the_given_home(tmp_path):
    config = load_text(
        tmp_path,
        '[executor]\npython = "~/venv/bin/python"\n[defaults]\nrun_dir = "~/runs"\n',
        env={"HOME": "/home/someone"},
    )
    assert config.run_dir == Path("/home/someone/runs")
    assert config.python == "/home/someone/venv/bin/python"


def test_missing_file_named_by_reflow_config_is_an_error(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(env={"REFLOW_CONFIG": str(missing)})
    assert (caught.value.param, caught.value.value) == ("REFLOW_CONFIG", str(missing))


def test_missing_file_given_as_path_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, path=tmp_path / "nope.toml")
    assert caught.value.value == str(tmp_path / "nope.toml")


def test_unreadable_config_path_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, path=tmp_path)
    assert caught.value.value == str(tmp_path)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[executor]\ncpus = = 4\n", 2),
        ("[executor]\npartition = compute\n", 2),
        ("[executor]\ncpus = 1\n[executor]\n", 3),
    ],
)
def test_malformed_toml_names_file_and_line(tmp_path, text, line):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, path=path)
    message = str(caught.value)
    assert caught.value.value == str(path)
    assert f"{path}, line {line}" in message
    assert "\n" not in message


def test_non_utf8_file_is_an_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[server]\nurl = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, path=path)
    assert caught.value.value == str(path)


@pytest.mark.parametrize(
    ("text", "param", "suggestion", "hint_part"),
    [
        ("[exector]\ncpus = 1\n", "exector", "executor", ""),
        ("[executor]\npartiton = 'x'\n", "executor.partiton", "partition", ""),
        ("[executor]\nrun_dir = '/x'\n", "executor.run_dir", None, "[defaults]"),
        ("[defaults]\npartition = 'x'\n", "defaults.partition", None, "[executor]"),
        ("partition = 'x'\n", "partition", None, "[executor]"),
        ("[server]\nurl = 'https://a.b'\ntoken = 'x'\n", "server.token", None, "url"),
        ("[nothing_alike]\n", "nothing_alike", None, "[server]"),
    ],
)
def test_unknown_section_or_key_is_named_with_a_near_match(
    tmp_path, text, param, suggestion, hint_part
):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, path=path)
    assert caught.value.param == param
    assert caught.value.suggestion == suggestion
    assert hint_part in (caught.value.hint or "")
    assert str(path) in str(caught.value)


def test_section_that_is_not_a_table_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, 'executor = "slurm"\n')
    assert (caught.value.param, caught.value.value) == ("executor", "slurm")


@pytest.mark.parametrize(
    ("line", "param", "value"),
    [
        ('cpus = "four"', "executor.cpus", "four"),
        ("cpus = 0", "executor.cpus", 0),
        ("cpus = true", "executor.cpus", True),
        ('mode = "batch"', "executor.mode", "batch"),
        ("mode = 1", "executor.mode", 1),
        ('mem = "lots"', "executor.mem", "lots"),
        ("mem = 1.5", "executor.mem", 1.5),
        ('time = "90"', "executor.time", "90"),
        ('gpus = "two"', "executor.gpus", "two"),
        ("partition = 3", "executor.partition", 3),
        ('partition = "a b"', "executor.partition", "a b"),
        ('extra = "--exclusive"', "executor.extra", "--exclusive"),
        ("extra = 5", "executor.extra", 5),
        ('extra = ["exclusive"]', "executor.extra", ["exclusive"]),
        ("python = 3", "executor.python", 3),
        ('python = ""', "executor.python", ""),
        ("max_array_size = 0", "executor.max_array_size", 0),
        ('submit_budget = "many"', "executor.submit_budget", "many"),
        ("local_slots = 1.5", "executor.local_slots", 1.5),
        ("retries = -1", "executor.retries", -1),
        ("retries = true", "executor.retries", True),
        ('dispatcher_mem = "x"', "executor.dispatcher_mem", "x"),
        ('dispatcher_time = "5"', "executor.dispatcher_time", "5"),
        ("dispatcher_partition = 1", "executor.dispatcher_partition", 1),
        ('min_task_time = "soon"', "executor.min_task_time", "soon"),
        ("min_task_time = 0", "executor.min_task_time", 0),
    ],
)
def test_wrong_value_in_file_names_file_key_and_value(tmp_path, line, param, value):
    path = write(tmp_path, f"[executor]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, path=path)
    assert (caught.value.param, caught.value.value) == (param, value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "param", "value"),
    [
        ("[defaults]\nrun_dir = 5\n", "defaults.run_dir", 5),
        ("[server]\nurl = 'flow.dkrz.de'\n", "server.url", "flow.dkrz.de"),
        ("[server]\nurl = 'ftp://flow.dkrz.de'\n", "server.url", "ftp://flow.dkrz.de"),
    ],
)
def test_wrong_value_in_other_sections_is_named(tmp_path, text, param, value):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    assert (caught.value.param, caught.value.value) == (param, value)


@pytest.mark.parametrize(
    ("text", "var", "param"),
    [
        ('[executor]\nmem = "lots"\n', "REFLOW_MEM", "executor.mem"),
        ('[executor]\nmode = "locale"\n', "REFLOW_MODE", "executor.mode"),
        ("[defaults]\nrun_dir = 5\n", "REFLOW_RUN_DIR", "defaults.run_dir"),
    ],
)
def test_a_bad_value_in_the_file_is_an_error_also_where_a_variable_wins(tmp_path, text, var, param):
    path = write(tmp_path, text)
    good = {"REFLOW_MEM": "2G", "REFLOW_MODE": "dry-run", "REFLOW_RUN_DIR": str(tmp_path)}[var]
    with pytest.raises(ConfigError) as caught:
        load_config(env={"HOME": str(tmp_path), var: good}, path=path)
    assert caught.value.param == param
    assert str(path) in str(caught.value)


def test_bad_mode_lists_the_choices_and_a_near_match(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, '[executor]\nmode = "slrum"\n')
    assert caught.value.suggestion == "slurm"
    hint = caught.value.hint or ""
    assert all(mode in hint for mode in ("local", "slurm", "dry-run"))


@pytest.mark.parametrize(
    ("var", "text", "value"),
    [
        ("REFLOW_MODE", "batch", "batch"),
        ("REFLOW_CPUS", "four", "four"),
        ("REFLOW_CPUS", "0", 0),
        ("REFLOW_CPUS", "-2", "-2"),
        ("REFLOW_MEM", "lots", "lots"),
        ("REFLOW_TIME", "1:30", "1:30"),
        ("REFLOW_GPUS", "0", "0"),
        ("REFLOW_PARTITION", "a,b", "a,b"),
        ("REFLOW_MAX_ARRAY_SIZE", "1e3", "1e3"),
        ("REFLOW_SUBMIT_BUDGET", "0", 0),
        ("REFLOW_LOCAL_SLOTS", "two", "two"),
        ("REFLOW_RETRIES", "-1", "-1"),
        ("REFLOW_SERVER_URL", "localhost", "localhost"),
    ],
)
def test_bad_environment_value_names_the_variable(tmp_path, var, text, value):
    with pytest.raises(ConfigError) as caught:
        load_config(env={"HOME": str(tmp_path), var: text})
    assert (caught.value.param, caught.value.value) == (var, value)


def test_bad_environment_value_is_reported_even_when_the_file_is_fine(tmp_path):
    path = write(tmp_path, '[executor]\nmem = "4G"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(env={"REFLOW_MEM": "4Q"}, path=path)
    assert caught.value.param == "REFLOW_MEM"


def test_config_is_frozen_and_hashable(tmp_path):
    config = load_text(tmp_path, SPEC_EXAMPLE)
    assert hash(config) == hash(load_text(tmp_path, SPEC_EXAMPLE))
    with pytest.raises(AttributeError):
        config.mode = "local"  # type: ignore[misc]
