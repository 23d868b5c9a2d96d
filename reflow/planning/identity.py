"""Planning: Merkle identities of values, lists and task instances. Pure; no I/O.

The rule of what enters an identity:

* An instance identity hashes exactly four things: the task name, the task's ``version=``
  string, the task's own parameter values (canonical JSON, so dict order does not matter),
  and, for each parameter that consumes upstream data, the hash of exactly the data it
  consumes (one element's value hash for a fan-out, the list hash of every element for a
  gather, the output hash for a direct or 1:1 edge).
* Nothing else ever enters: not resources (cpus, mem, time, gpus), partition, account,
  retries, ``after=`` ordering, the paths of the run directory, the run id, the element
  index, the clock or the host. Changing those reuses cached results; changing any of the
  four things above gives a new identity, and through the consumed hashes, new identities
  downstream. The function's source code is not hashed, except under ``[cache]
  on_code_change = "rerun"``, where the planner passes ``"<version>+code:<code hash>"`` as
  the version string (so without it, identities are exactly those of earlier releases).

A task's **key** (:func:`task_key`) hashes what all of a task's identities are computed
from: the same four things, with the data of each input given as the hash of the whole
upstream output it comes from, and how it is consumed. Two plannings of a task with the same
key give the same identities, element by element, so the store can take a whole task from
the cache at once when an earlier planning with the key has every output still cached.

Every hashed structure is canonical JSON (:mod:`reflow.planning.encoding`) of an array that
starts with a tag and format version, e.g. ``["reflow/value/1", <value>]``. Hashes are full
SHA-256 hex digests. Changing what a structure holds, or how it is written, means bumping its
version, because stored identities would silently stop matching.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from reflow.planning.encoding import (
    LocatedEncodingError,
    dumps,
    encode_items,
    to_json,
    to_text,
)

VALUE_TAG = "reflow/value/1"
LIST_TAG = "reflow/list/1"
INSTANCE_TAG = "reflow/instance/1"
TASK_TAG = "reflow/task/1"

_VALUE_PREFIX = f'["{VALUE_TAG}",'
_DIGEST_LENGTH = 64
_DROP_HEX_DIGITS = str.maketrans("", "", "0123456789abcdef")


def value_hash(canonical_text: str) -> str:
    """Return the hash of one value, given its canonical text.

    Args:
        canonical_text: The value's text from :func:`reflow.planning.encoding.dumps` (or one
            item of ``encode_items``); it is trusted to be canonical.

    Returns:
        The SHA-256 hex digest of ``["reflow/value/1",<canonical_text>]``.
    """
    return hashlib.sha256(f"{_VALUE_PREFIX}{canonical_text}]".encode()).hexdigest()


def output_hash(value: Any) -> str:
    """Return the hash of a value, e.g. a task's return value: ``value_hash(dumps(value))``.

    Raises:
        LocatedEncodingError: ``value`` cannot be encoded.
    """
    return value_hash(dumps(value))


def element_hashes(values: list[Any]) -> list[str]:
    """Return the value hash of each element of ``values``, in order.

    ``element_hashes(values)[i] == output_hash(values[i])``: an element's hash does not
    depend on its index or its neighbours, so inserting an element into a fan-out leaves
    the other elements cached.

    Raises:
        LocatedEncodingError: An element cannot be encoded; the location names its index.
    """
    return value_hashes(encode_items(values))


def value_hashes(canonical_texts: Iterable[str]) -> list[str]:
    """Return :func:`value_hash` of each canonical text, in order, in one tight loop."""
    sha256 = hashlib.sha256
    prefix = _VALUE_PREFIX
    return [sha256(f"{prefix}{text}]".encode()).hexdigest() for text in canonical_texts]


def item_hashes(items: Sequence[Any]) -> list[str]:
    """Return the value hash of each item of a list already in tagged JSON form, in order.

    What a fan-out's elements consume: item ``i`` of a job's list, as the store holds it.
    """
    if all(type(item) is str for item in items):
        return value_hashes(map(encode_basestring, items))
    return value_hashes(to_text(item) for item in items)


def list_hash(hashes: Sequence[str]) -> str:
    """Return the hash of an ordered list of hashes: what a gather consumes.

    Args:
        hashes: Hex digests, e.g. from :func:`element_hashes`; order matters.

    Returns:
        The SHA-256 hex digest of ``["reflow/list/1",[<hash>,...]]``.

    Raises:
        ValueError: An item is not a SHA-256 hex digest (a bug in the caller).
    """
    items = list(hashes)
    _require_digests(items)
    # Digests are plain lowercase hex, so their canonical list needs no JSON encoder.
    listed = '"' + '","'.join(items) + '"' if items else ""
    return hashlib.sha256(f'["{LIST_TAG}",[{listed}]]'.encode()).hexdigest()


def instance_identity(
    *, task: str, version: str, params: Mapping[str, Any], inputs: Mapping[str, str]
) -> str:
    """Return the identity of one task instance (see the module docstring for the rule).

    Args:
        task: The task's name.
        version: The task's ``version=`` string.
        params: The task's own parameter values by name (not the consumed data).
        inputs: For each parameter that consumes upstream data, the hash of that data.

    Returns:
        The SHA-256 hex digest of
        ``["reflow/instance/1",{"inputs":{...},"params":{...},"task":...,"version":...}]``.

    Raises:
        LocatedEncodingError: A parameter value cannot be encoded; ``task`` and ``param``
            name it.
        ValueError: A name is in both ``params`` and ``inputs``, or an input is not a
            SHA-256 hex digest (bugs in the caller).
    """
    return instance_identities(task=task, version=version, params=params, inputs=[inputs])[0]


def instance_identities(
    *, task: str, version: str, params: Mapping[str, Any], inputs: Sequence[Mapping[str, str]]
) -> list[str]:
    """Return the identities of many instances of one task that share ``params``.

    ``instance_identities(..., inputs=rows)[i]`` equals ``instance_identity(...,
    inputs=rows[i])``; the parameters are encoded once, which is what a fan-out of 100,000
    elements needs.

    Raises:
        LocatedEncodingError: A parameter value cannot be encoded.
        ValueError: As for :func:`instance_identity`.
    """
    rows = list(inputs)
    names = rows[0].keys() if rows else {}.keys()
    if all(row.keys() == names for row in rows):
        columns = {name: [row[name] for row in rows] for name in names}
        return column_identities(
            task=task, version=version, params=params, columns=columns, size=len(rows)
        )
    return [
        column_identities(task=task, version=version, params=params, columns=row, size=1)[0]
        for row in rows
    ]


def column_identities(
    *,
    task: str,
    version: str,
    params: Mapping[str, Any],
    columns: Mapping[str, str | list[str] | tuple[str, ...]],
    size: int,
) -> list[str]:
    """Return the identities of ``size`` instances of one task, inputs given per parameter.

    The planner's form of :func:`instance_identities`: for each parameter that consumes
    upstream data, ``columns`` holds either one digest per instance (a list or tuple of
    ``size`` digests, e.g. a fan-out's element hashes) or one digest that every instance consumes
    (a ``str``). Instance ``i`` gets the identity ``instance_identity`` gives it.

    Raises:
        LocatedEncodingError: A parameter value cannot be encoded.
        ValueError: As for :func:`instance_identity`, or a column's length is not ``size``.
    """
    encoded = _encode_params(task, params)
    # The canonical text sorts "inputs" before "params", "task" and "version", so the text
    # after the inputs is the same for every instance: written once by the encoder, here.
    shared = to_text({"params": encoded, "task": task, "version": version})
    # Between two per-instance digests the text is fixed too: the keys, the quotes and the
    # digests every instance shares. ``pieces`` alternates fixed text and digest columns.
    pieces: list[str] = [f'["{INSTANCE_TAG}",{{"inputs":{{']
    digests: list[Any] = []
    per_instance: list[Sequence[str]] = []
    for position, name in enumerate(sorted(columns)):
        if name in params:
            raise ValueError(f"{task}: {name!r} is given both as a param and an input")
        column = columns[name]
        key = f'{"," if position else ""}{encode_basestring(name)}:"'
        if not isinstance(column, (list, tuple)):  # one digest for all (checked below)
            digests.append(column)
            pieces[-1] += f'{key}{column}"'
            continue
        if len(column) != size:
            raise ValueError(f"{task}: input {name!r} has {len(column)} hashes for {size}")
        digests.extend(column)
        pieces[-1] += key
        per_instance.append(column)
        pieces.append('"')
    pieces[-1] += f"}},{shared[1:]}]"
    _require_digests(digests)
    sha256 = hashlib.sha256
    if not per_instance:
        return [sha256(pieces[0].encode()).hexdigest()] * size
    if len(per_instance) == 1:
        head, tail = pieces
        return [sha256(f"{head}{digest}{tail}".encode()).hexdigest() for digest in per_instance[0]]
    first, rest = pieces[0], pieces[1:]
    return [
        sha256(
            (first + "".join(d + piece for d, piece in zip(row, rest, strict=True))).encode()
        ).hexdigest()
        for row in zip(*per_instance, strict=True)
    ]


def task_key(
    *,
    task: str,
    version: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, Sequence[tuple[str, str, str]]],
    array: bool,
) -> str:
    """Return the key of a task's planning: equal keys give equal identities, in order.

    Args:
        task: The task's name.
        version: The version string its identities get (``version=``, and the code's hash
            where it enters them).
        params: The task's own parameter values by name, as for :func:`instance_identity`.
        inputs: For each parameter that consumes upstream data, one ``(how, source,
            digest)`` per edge into it, in order: how it is consumed (the edge's mode), the
            upstream task, and the :func:`list_hash` of that task's output hashes.
        array: Whether the task is an array (one instance per item) or a single job.

    Returns:
        The SHA-256 hex digest of ``["reflow/task/1",{"array":...,"inputs":{...},
        "instance":"reflow/instance/1","params":{...},"task":...,"version":...}]``; the
        identity format enters it, so a new one never matches an older key.
    """
    listed = {name: [list(edge) for edge in edges] for name, edges in inputs.items()}
    structure = {
        "array": array,
        "inputs": listed,
        "instance": INSTANCE_TAG,
        "params": _encode_params(task, params),
        "task": task,
        "version": version,
    }
    return hashlib.sha256(to_text([TASK_TAG, structure]).encode()).hexdigest()


def _encode_params(task: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Encode each parameter value, naming the task and parameter on failure."""
    encoded: dict[str, Any] = {}
    for name, value in params.items():
        try:
            encoded[name] = to_json(value, where=name)
        except LocatedEncodingError as err:
            raise err.for_task(task, name) from err
    return encoded


def _require_digests(items: list[str]) -> None:
    """Reject anything but lowercase SHA-256 hex digests, so no bug hashes silently."""
    lengths_ok = set(map(type, items)) <= {str} and set(map(len, items)) <= {_DIGEST_LENGTH}
    if not lengths_ok or "".join(items).translate(_DROP_HEX_DIGITS):
        raise ValueError("expected SHA-256 hex digests (64 lowercase hex characters)")
