"""Running: what each config value must be: the checks behind ``config``'s schema.

``config`` finds the settings (file and ``REFLOW_*``) and knows which kind each key is; this
module checks a value of a kind and turns a problem into a one-line ``ConfigError`` that
names where the value came from. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from reflow.definition.environment import environment_problems
from reflow.definition.errors import ConfigError, DefinitionError, suggest
from reflow.definition.resources import build_resources, parse_time
from reflow.definition.spec import FINGERPRINT_MODES

Mode = Literal["local", "slurm", "dry-run"]
CodeChange = Literal["warn", "rerun", "ignore"]
_CODE_CHANGES: tuple[CodeChange, ...] = ("warn", "rerun", "ignore")

_MODES: tuple[Mode, ...] = ("local", "slurm", "dry-run")
_MODE_ALIASES: dict[str, Mode] = {"sbatch": "slurm", "dry_run": "dry-run", "dryrun": "dry-run"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """One raw value before validation, with the names a message needs."""

    key: str  # "executor.mem"
    value: Any
    param: str  # what the user typed: "executor.mem" or "REFLOW_MEM"
    source: str  # "REFLOW_MEM" or "/path/config.toml [executor] mem"
    file: Path | None


def check_value(setting: Setting, kind: str, home: Path) -> Any:
    """Validate one setting of ``kind`` (the config schema's word for it); return its value."""
    _section, name = setting.key.split(".")
    value = setting.value
    if kind == "resource":
        return _check_resource(setting, name, name)
    if kind == "dispatcher":
        return _check_resource(setting, name.removeprefix("dispatcher_"), name)
    if kind == "environment":
        setup, env = (value, None) if name == "setup" else (None, value)
        problems = environment_problems(setup, env)
        if problems:
            raise invalid(setting, problems[0].problem, hint=problems[0].hint)
        return value
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise invalid(setting, f"{name}={value!r} must be a positive int")
        return value
    if kind == "at_least_0":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise invalid(setting, f"{name}={value!r} must be an int of 0 or more")
        return value
    if kind == "mode":
        return _check_mode(setting)
    if kind == "duration":
        try:
            return parse_time(value)
        except DefinitionError as err:
            raise invalid(setting, f"{name}={value!r} is not a duration", hint=err.hint) from err
    if kind == "code_change":
        if value not in _CODE_CHANGES:
            choices = ", ".join(repr(m) for m in _CODE_CHANGES)
            raise invalid(setting, f"{name}={value!r} must be one of {choices}")
        return value
    if kind == "paths":
        return _check_paths(setting, name, home)
    if kind == "fingerprint":
        if value not in FINGERPRINT_MODES:
            choices = ", ".join(repr(m) for m in FINGERPRINT_MODES)
            raise invalid(setting, f"{name}={value!r} must be one of {choices}")
        return value
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise invalid(setting, f"{name}={value!r} must be a non-empty one-line string")
    if kind == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid(
                setting,
                f"{name}={value!r} is not an http(s) URL",
                hint='write e.g. "https://flow.example.org"',
            )
        return value
    if kind == "path":
        return expand_home(value.strip(), home)
    return str(expand_home(value, home)) if value.startswith("~") else value


def _check_paths(setting: Setting, name: str, home: Path) -> tuple[Path, ...]:
    """A list of folders: a TOML list of strings, or ``:``-separated text (like ``PATH``)."""
    value = setting.value
    items = value.split(":") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(
        isinstance(item, str) and "\n" not in item for item in items
    ):
        raise invalid(
            setting,
            f"{name}={value!r} must be a list of run directories",
            hint=f'write e.g. {name} = ["/scratch/run1", "/scratch/run2"]',
        )
    return tuple(expand_home(item.strip(), home) for item in items if item.strip())


def _check_resource(setting: Setting, option: str, name: str) -> Any:
    """Validate one resource value with ``build_resources``, the one place that knows them."""
    value = setting.value
    if option == "extra" and not isinstance(value, list):
        raise invalid(
            setting,
            f"{name}={value!r} must be a list of sbatch options",
            hint='e.g. extra = ["--exclusive"]',
        )
    try:
        build_resources(**{option: value})
    except DefinitionError as err:
        problem = err.problem
        if problem.startswith(f"{option}="):
            problem = name + problem[len(option) :]
        raise invalid(setting, problem, hint=err.hint) from err
    return value


def _check_mode(setting: Setting) -> Mode:
    value = setting.value
    text = value.strip().lower() if isinstance(value, str) else ""
    for mode in _MODES:
        if text == mode:
            return mode
    if text in _MODE_ALIASES:
        return _MODE_ALIASES[text]
    near = suggest(text, [*_MODES, *_MODE_ALIASES]) if text else None
    choices = ", ".join(f'"{mode}"' for mode in _MODES)
    raise invalid(
        setting,
        f"mode={value!r} is not an executor mode",
        suggestion=_MODE_ALIASES.get(near, near) if near else None,
        hint=f'choose one of {choices} ("sbatch" means "slurm")',
    )


def invalid(
    setting: Setting, problem: str, *, hint: str | None = None, suggestion: str | None = None
) -> ConfigError:
    where = f"in {setting.file}, " if setting.file else ""
    if hint is None and suggestion is None:  # say at least where to fix it
        section, name = setting.key.split(".")
        hint = f"correct [{section}] {name} there" if setting.file else "correct or unset it"
    return ConfigError(
        where + problem,
        param=setting.param,
        value=setting.value,
        hint=hint,
        suggestion=suggestion,
    )


def expand_home(text: str, home: Path) -> Path:
    """Expand a leading ``~`` against the given home, so a passed-in environment is honoured."""
    if text == "~" or text.startswith("~/"):
        return home / text[2:]
    return Path(text).expanduser()
