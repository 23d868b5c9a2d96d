"""Definition: scheduler resources of a task, validated and normalized. Pure, no I/O.

Every value is checked here, at decoration time, so that Slurm never sees a resource it would
reject: ``time`` as ``HH:MM:SS`` / ``D-HH:MM:SS`` (or whole minutes as an int), ``mem`` as a
number with a ``K``/``M``/``G``/``T`` suffix, ``cpus`` and ``gpus`` positive, ``pack`` a
positive int or ``"auto"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reflow.definition.errors import DefinitionError

_TIME = re.compile(r"^(?:(?P<days>\d+)-)?(?P<h>\d{1,3})(?::(?P<m>\d{1,2}))?(?::(?P<s>\d{1,2}))?$")
_MEM = re.compile(r"^(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]?)(?:I?B)?$", re.IGNORECASE)
_MEM_FACTOR_MB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}
_GPUS = re.compile(r"^(?:[A-Za-z0-9_.-]+:)?[1-9]\d*$")
_SET_BY_REFLOW = frozenset(
    {"--array", "--dependency", "--output", "--error", "--chdir", "--job-name", "--parsable"}
)
_NAME = re.compile(r"^[^\s,;]+$")


RESOURCE_OPTIONS = (
    "cpus",
    "mem",
    "time",
    "gpus",
    "partition",
    "account",
    "qos",
    "constraint",
    "extra",
    "array_limit",
)
"""The resource options of ``@job`` and ``@array_job``, in the order reflow shows them."""
_FIELD_OF = {"mem": "mem_mb", "time": "time_s"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """What one element of a task asks the scheduler for. ``None`` means "not set here".

    ``pack`` is how many elements one Slurm array task runs, one after another (an int, or
    ``"auto"`` to choose from the task's earlier elements); ``time_s`` stays per element.
    """

    cpus: int | None = None
    mem_mb: int | None = None
    time_s: int | None = None
    gpus: str | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    extra: tuple[str, ...] = ()
    array_limit: int | None = None
    pack: int | str | None = None

    def value(self, option: str) -> object:
        """The normalized value of a resource option (``"mem"`` gives ``mem_mb``)."""
        return getattr(self, field_of(option))

    def shown(self) -> dict[str, str]:
        """The options that are set, as the decorator takes them: ``{"mem": "1G"}``."""
        values = {option: self.value(option) for option in RESOURCE_OPTIONS}
        return {k: show_value(k, v) for k, v in values.items() if v not in (None, ())}

    def over(self, base: Resources) -> Resources:
        """Return these resources with every unset field taken from ``base``."""
        return Resources(
            cpus=self.cpus if self.cpus is not None else base.cpus,
            mem_mb=self.mem_mb if self.mem_mb is not None else base.mem_mb,
            time_s=self.time_s if self.time_s is not None else base.time_s,
            gpus=self.gpus if self.gpus is not None else base.gpus,
            partition=self.partition if self.partition is not None else base.partition,
            account=self.account if self.account is not None else base.account,
            qos=self.qos if self.qos is not None else base.qos,
            constraint=self.constraint if self.constraint is not None else base.constraint,
            extra=base.extra + self.extra,
            array_limit=self.array_limit if self.array_limit is not None else base.array_limit,
            pack=self.pack if self.pack is not None else base.pack,
        )


def field_of(option: str) -> str:
    """The ``Resources`` field of a resource option: ``mem`` is ``mem_mb``, ``time`` ``time_s``."""
    return _FIELD_OF.get(option, option)


def show_value(option: str, value: object) -> str:
    """A resource option's normalized value as the decorator takes it (``unset`` when None)."""
    if value is None or value == ():
        return "unset"
    if option == "mem" and isinstance(value, int):
        return format_mem(value)
    if option == "time" and isinstance(value, int):
        return format_time(value)
    if option == "extra" and isinstance(value, tuple):
        return " ".join(value)
    return str(value)


def parse_time(value: str | int, *, task: str | None = None) -> int:
    """Parse a Slurm time limit into seconds.

    Accepts whole minutes as an int, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM`` and ``D-HH:MM:SS``.
    ``MM:SS`` and bare minute strings are refused as ambiguous.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DefinitionError(
            f"time={value!r} is not a time limit",
            task=task,
            param="time",
            value=value,
            hint='write "HH:MM:SS", "D-HH:MM:SS" or whole minutes as an int',
        )
    if isinstance(value, int):
        if value <= 0:
            raise DefinitionError(
                f"time={value!r} must be a positive number of minutes",
                task=task,
                param="time",
                value=value,
            )
        return value * 60
    match = _TIME.match(value.strip())
    days = match and match.group("days")
    three_parts = match and match.group("s") is not None
    if not match or not (three_parts or days):
        raise DefinitionError(
            f"time={value!r} is not an unambiguous Slurm time limit",
            task=task,
            param="time",
            value=value,
            hint='write "HH:MM:SS" (e.g. "01:00:00"), "D-HH:MM:SS" or whole minutes as an int',
        )
    hours, minutes, seconds = (int(match.group(k) or 0) for k in ("h", "m", "s"))
    if minutes >= 60 or seconds >= 60 or (days and hours >= 24):
        raise DefinitionError(
            f"time={value!r} has a field out of range",
            task=task,
            param="time",
            value=value,
            hint="minutes and seconds go up to 59, hours after a day count up to 23",
        )
    total = ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise DefinitionError(
            f"time={value!r} must be longer than zero", task=task, param="time", value=value
        )
    return total


def format_time(seconds: int) -> str:
    """Render seconds as a Slurm time limit (``D-HH:MM:SS`` or ``HH:MM:SS``)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def parse_mem(value: str | int, *, task: str | None = None) -> int:
    """Parse a memory size (``"4G"``, ``"500M"``, ``"1.5G"``, or an int of megabytes) into MB."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DefinitionError(
            f"mem={value!r} is not a memory size",
            task=task,
            param="mem",
            value=value,
            hint='write e.g. "4G" or "500M"',
        )
    if isinstance(value, int):
        mem_mb = value
    else:
        match = _MEM.match(value.strip())
        if not match:
            raise DefinitionError(
                f"mem={value!r} is not a memory size",
                task=task,
                param="mem",
                value=value,
                hint='write a number with an optional K, M, G or T suffix, e.g. "4G"',
            )
        factor = _MEM_FACTOR_MB[match.group("unit").upper()]
        mem_mb = int(-(-float(match.group("num")) * factor // 1))
    if mem_mb <= 0:
        raise DefinitionError(
            f"mem={value!r} must be at least 1M", task=task, param="mem", value=value
        )
    return mem_mb


def format_mem(mem_mb: int) -> str:
    """Render megabytes the way ``sbatch --mem`` reads them."""
    return f"{mem_mb // 1024}G" if mem_mb % 1024 == 0 else f"{mem_mb}M"


def _positive(name: str, value: object, task: str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DefinitionError(
            f"{name}={value!r} must be a positive int",
            task=task,
            param=name,
            value=value,
            hint=f"pass {name}=1 or more, or leave it out",
        )
    return value


def _word(name: str, value: object, task: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise DefinitionError(
            f"{name}={value!r} must be a non-empty name without spaces or commas",
            task=task,
            param=name,
            value=value,
            hint=f"write the {name} name exactly as Slurm lists it (sinfo, sacctmgr)",
        )
    return value


def build_resources(
    *,
    task: str | None = None,
    cpus: int | None = None,
    mem: str | int | None = None,
    time: str | int | None = None,
    gpus: int | str | None = None,
    partition: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    constraint: str | None = None,
    extra: Sequence[str] = (),
    array_limit: int | None = None,
    pack: int | str | None = None,
) -> Resources:
    """Validate user-facing resource options and return normalized ``Resources``."""
    gpus_text: str | None = None
    if gpus is not None:
        gpus_text = str(gpus) if isinstance(gpus, int) else gpus
        if isinstance(gpus, bool) or not isinstance(gpus_text, str) or not _GPUS.match(gpus_text):
            raise DefinitionError(
                f"gpus={gpus!r} is not a GPU request",
                task=task,
                param="gpus",
                value=gpus,
                hint='write a positive count (2) or "type:count" ("a100:2")',
            )
    if not isinstance(extra, (list, tuple)) or not all(
        isinstance(item, str) and item for item in extra
    ):
        raise DefinitionError(
            f"extra={extra!r} must be a list of sbatch options",
            task=task,
            param="extra",
            value=extra,
            hint='e.g. extra=["--exclusive", "--mail-type=END"]',
        )
    for item in extra:
        if not item.startswith("--"):
            raise DefinitionError(
                f"extra option {item!r} does not start with --",
                task=task,
                param="extra",
                value=item,
                hint='write long options such as "--exclusive"',
            )
        if any(ch in item for ch in "\n\r\0"):
            raise DefinitionError(
                f"extra option {item!r} holds a line break",
                task=task,
                param="extra",
                value=item,
                hint="give each sbatch option as its own list item",
            )
        option = item.split("=", 1)[0]
        if option in _SET_BY_REFLOW:
            raise DefinitionError(
                f"extra option {item!r} sets {option}, which reflow sets itself",
                task=task,
                param="extra",
                value=item,
                hint="leave it out; use array_limit= to throttle arrays",
            )
    return Resources(
        cpus=_positive("cpus", cpus, task),
        mem_mb=None if mem is None else parse_mem(mem, task=task),
        time_s=None if time is None else parse_time(time, task=task),
        gpus=gpus_text,
        partition=_word("partition", partition, task),
        account=_word("account", account, task),
        qos=_word("qos", qos, task),
        constraint=None if constraint is None else _constraint(constraint, task),
        extra=tuple(extra),
        array_limit=_positive("array_limit", array_limit, task),
        pack=_pack(pack, task),
    )


def _pack(value: object, task: str | None) -> int | str | None:
    if value == "auto":
        return "auto"
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise DefinitionError(
        f'pack={value!r} must be a positive int or "auto"',
        task=task,
        param="pack",
        value=value,
        hint='pass pack=100 (elements per array task), pack="auto", or leave it out',
    )


def _constraint(value: object, task: str | None) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise DefinitionError(
            f"constraint={value!r} must be a Slurm feature expression",
            task=task,
            param="constraint",
            value=value,
            hint='e.g. "haswell|broadwell"',
        )
    return value
