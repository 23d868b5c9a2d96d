"""Running: the user's config file and ``REFLOW_*`` environment, merged and validated.

Reads one TOML file (``$REFLOW_CONFIG``, else ``$XDG_CONFIG_HOME/reflow/config.toml``, else
``~/.config/reflow/config.toml``) and the ``REFLOW_*`` variables; the environment wins over the
file. CLI flags and decorator options are applied by their own layers on top of this, never
here. Every value is checked on load and remembers where it came from, so a message can say
"from REFLOW_MEM" or "from /path/config.toml [executor] mem". Reading is all this module does:
it never writes the environment and nothing happens at import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflow.definition.environment import Environment, build_environment
from reflow.definition.errors import ConfigError, suggest
from reflow.definition.resources import Resources, build_resources
from reflow.definition.spec import FingerprintMode
from reflow.running.config_file import read_toml
from reflow.running.config_values import (
    CodeChange,
    Mode,
    Setting,
    check_value,
    expand_home,
)

_PLACEMENT = ("partition", "account", "qos", "constraint")
_TASK_RESOURCES = (*_PLACEMENT, "cpus", "mem", "time", "gpus", "extra")
_DISPATCHER_RESOURCES = ("dispatcher_time", "dispatcher_mem", "dispatcher_partition")
_COUNTS = ("max_array_size", "submit_budget", "local_slots", "dispatcher_interval_s")

# section -> key -> kind of value; the kind picks the validator in ``_check``.
_SCHEMA: dict[str, dict[str, str]] = {
    "executor": {
        "mode": "mode",
        "python": "text",
        **dict.fromkeys(_TASK_RESOURCES, "resource"),
        **dict.fromkeys(_COUNTS, "count"),
        "retries": "at_least_0",
        **dict.fromkeys(_DISPATCHER_RESOURCES, "dispatcher"),
        "result_grace": "at_least_0",
        "setup": "environment",
        "env": "environment",
        "min_task_time": "duration",
    },
    "defaults": {"run_dir": "path"},
    "cache": {"fingerprint": "fingerprint", "on_code_change": "code_change", "cache_from": "paths"},
    "server": {"url": "url"},
}

# variable -> key; REFLOW_CONFIG (the file itself) is read by ``_locate``.
_ENV: dict[str, str] = {
    "REFLOW_MODE": "executor.mode",
    "REFLOW_PARTITION": "executor.partition",
    "REFLOW_ACCOUNT": "executor.account",
    "REFLOW_QOS": "executor.qos",
    "REFLOW_CONSTRAINT": "executor.constraint",
    "REFLOW_PYTHON": "executor.python",
    "REFLOW_CPUS": "executor.cpus",
    "REFLOW_MEM": "executor.mem",
    "REFLOW_TIME": "executor.time",
    "REFLOW_GPUS": "executor.gpus",
    "REFLOW_MAX_ARRAY_SIZE": "executor.max_array_size",
    "REFLOW_SUBMIT_BUDGET": "executor.submit_budget",
    "REFLOW_LOCAL_SLOTS": "executor.local_slots",
    "REFLOW_RESULT_GRACE": "executor.result_grace",
    "REFLOW_DISPATCHER_INTERVAL_S": "executor.dispatcher_interval_s",
    "REFLOW_MIN_TASK_TIME": "executor.min_task_time",
    "REFLOW_RETRIES": "executor.retries",
    "REFLOW_RUN_DIR": "defaults.run_dir",
    "REFLOW_FINGERPRINT": "cache.fingerprint",
    "REFLOW_ON_CODE_CHANGE": "cache.on_code_change",
    "REFLOW_CACHE_FROM": "cache.cache_from",
    "REFLOW_SERVER_URL": "server.url",
}
_ENV_INTS = frozenset(
    {
        "executor.cpus",
        "executor.time",
        "executor.result_grace",
        "executor.retries",
        "executor.min_task_time",
        *(f"executor.{n}" for n in _COUNTS),
    }
)
DEFAULT_RESULT_GRACE_S = 60
"""Seconds a result may take to appear after its job ended (``[executor] result_grace``)."""
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The user's settings from the config file and ``REFLOW_*`` variables, validated.

    ``None`` means "not set", so the next layer (the CLI, a decorator, a built-in default)
    decides. ``environment`` holds ``[executor] setup`` and ``env`` (file only), which a
    task's own come after. ``sources`` pairs each set key (``"executor.mem"``,
    ``"defaults.run_dir"``, ``"server.url"``, ...) with where it came from, sorted by key;
    ``path`` is the config file that was read, or ``None`` when there was none.
    """

    mode: Mode | None = None
    python: str | None = None
    run_dir: Path | None = None
    server_url: str | None = None
    resources: Resources = field(default_factory=Resources)
    max_array_size: int | None = None
    submit_budget: int | None = None
    local_slots: int | None = None
    result_grace: int = DEFAULT_RESULT_GRACE_S
    dispatcher_interval_s: int | None = None
    min_task_time_s: int | None = None
    retries: int | None = None
    dispatcher: Resources = field(default_factory=Resources)
    environment: Environment = field(default_factory=Environment)
    fingerprint: FingerprintMode | None = None
    on_code_change: CodeChange | None = None
    cache_from: tuple[Path, ...] | None = None
    path: Path | None = None
    sources: tuple[tuple[str, str], ...] = ()

    def source_of(self, key: str) -> str | None:
        """Return where ``key`` (e.g. ``"executor.mem"``) was set, or None if it was not."""
        return dict(self.sources).get(key)


def default_config_path(env: Mapping[str, str]) -> Path:
    """Return ``$XDG_CONFIG_HOME/reflow/config.toml``, else ``~/.config/reflow/config.toml``.

    A relative or empty ``XDG_CONFIG_HOME`` is ignored, as the XDG spec asks.
    """
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else _home(env) / ".config"
    return base / "reflow" / "config.toml"


def load_config(*, env: Mapping[str, str] | None = None, path: Path | None = None) -> Config:
    """Read the config file and the ``REFLOW_*`` environment into one validated ``Config``.

    Args:
        env: The environment to read; ``os.environ`` when None. Empty variables count as unset.
        path: The config file to read. When None: ``$REFLOW_CONFIG`` if set, else the default
            location (see ``default_config_path``). A missing default file means an empty
            config; a missing file named by ``path`` or ``REFLOW_CONFIG`` is an error.

    Returns:
        The merged settings, the environment taking precedence over the file.

    Raises:
        ConfigError: The file cannot be read or is not valid TOML, it has an unknown section
            or key, or a value (in the file or the environment) has the wrong type or form.
    """
    env = os.environ if env is None else env
    file, asked_by = _locate(env, path)
    document = read_toml(file, asked_by)
    settings = _file_settings(document, file) if document is not None else {}
    home = _home(env)
    # The file is checked whole, also where a variable wins; then the variables.
    values = {key: check_value(setting, _kind(setting), home) for key, setting in settings.items()}
    variables = _env_settings(env)
    values.update({key: check_value(s, _kind(s), home) for key, s in variables.items()})
    settings.update(variables)
    return Config(
        mode=values.get("executor.mode"),
        python=values.get("executor.python"),
        run_dir=values.get("defaults.run_dir"),
        server_url=values.get("server.url"),
        resources=build_resources(**_section_values(values, _TASK_RESOURCES)),
        max_array_size=values.get("executor.max_array_size"),
        submit_budget=values.get("executor.submit_budget"),
        local_slots=values.get("executor.local_slots"),
        result_grace=values.get("executor.result_grace", DEFAULT_RESULT_GRACE_S),
        dispatcher_interval_s=values.get("executor.dispatcher_interval_s"),
        min_task_time_s=values.get("executor.min_task_time"),
        retries=values.get("executor.retries"),
        dispatcher=build_resources(**_section_values(values, _DISPATCHER_RESOURCES)),
        environment=build_environment(values.get("executor.setup"), values.get("executor.env")),
        fingerprint=values.get("cache.fingerprint"),
        on_code_change=values.get("cache.on_code_change"),
        cache_from=values.get("cache.cache_from"),
        path=None if document is None else file,
        sources=tuple(sorted((key, setting.source) for key, setting in settings.items())),
    )


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME", "")
    return Path(home) if home else Path.home()


def _locate(env: Mapping[str, str], path: Path | None) -> tuple[Path, str | None]:
    """Return the config file and who named it explicitly (None for the default location)."""
    if path is not None:
        return path, "path"
    named = env.get("REFLOW_CONFIG", "").strip()
    if named:
        return expand_home(named, _home(env)), "REFLOW_CONFIG"
    return default_config_path(env), None


def _file_settings(document: Mapping[str, Any], file: Path) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for section, table in document.items():
        if section not in _SCHEMA:
            raise _unknown(file, None, section, table)
        if not isinstance(table, dict):
            raise ConfigError(
                f"in {file}, {section} = {table!r} must be a table",
                param=section,
                value=table,
                hint=f"write [{section}] on its own line with the keys below it",
            )
        for name, value in table.items():
            if name not in _SCHEMA[section]:
                raise _unknown(file, section, name, value)
            key = f"{section}.{name}"
            settings[key] = Setting(
                key=key, value=value, param=key, source=f"{file} [{section}] {name}", file=file
            )
    return settings


def _unknown(file: Path, section: str | None, name: str, value: object) -> ConfigError:
    """Build the error for a key or section the schema does not know, with a near match."""
    known: list[str] = list(_SCHEMA[section]) if section else list(_SCHEMA)
    owners = [other for other, keys in _SCHEMA.items() if name in keys and other != section]
    near = None if owners else suggest(name, known)
    if owners:
        hint: str | None = f"{name} belongs in [{owners[0]}]"
    elif near:
        hint = None
    elif section:
        hint = f"[{section}] takes: {', '.join(known)}"
    else:
        hint = f"sections are: {', '.join(f'[{other}]' for other in known)}"
    kind = "section" if section is None and isinstance(value, dict) else "key"
    param = f"{section}.{name}" if section else name
    return ConfigError(
        f"in {file}, unknown {kind} {name!r}",
        param=param,
        value=value,
        suggestion=near,
        hint=hint,
    )


def _env_settings(env: Mapping[str, str]) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for var, key in _ENV.items():
        text = env.get(var, "").strip()
        if not text:
            continue
        value: object = int(text) if key in _ENV_INTS and _DIGITS.fullmatch(text) else text
        settings[key] = Setting(key=key, value=value, param=var, source=var, file=None)
    return settings


def _kind(setting: Setting) -> str:
    section, name = setting.key.split(".")
    return _SCHEMA[section][name]


def _section_values(values: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Return the set ``executor.*`` values among ``names`` as ``build_resources`` options."""
    return {
        name.removeprefix("dispatcher_"): values[f"executor.{name}"]
        for name in names
        if f"executor.{name}" in values
    }
