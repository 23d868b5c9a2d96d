"""Running: where a run's results are: an element's own result file, or its bundle's line.

``ResultFinder`` reads each results folder, bundle and batch file at most once; the
dispatcher's ingest, ``status``, ``report`` and ``usage`` find results through it. A bundle
whose every line is a success of its array task's own elements is read as columns
(``successes``), the rows the store stages as they are; any other result is read element by
element (``find``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from reflow.running.executors.slurm_arrays import array_tasks
from reflow.running.rundir.batches import BatchFile, read_batch
from reflow.running.rundir.bundles import Success, bundle_documents, read_bundle, successes_of
from reflow.running.rundir.layout import RunLayout, bundle_name, result_name
from reflow.running.rundir.results import (
    ResultProblem,
    ResultRecord,
    first_records,
    read_result,
    result_names,
)
from reflow.running.store.records import InstanceRow


class ResultFinder:
    """Finds in-flight instances' results: each file, bundle and batch file read at most once.

    An element's own result file comes first; an element of a packed batch (its batch file's
    ``pack`` above 1) is then looked up in the bundle of its array task. Only the bundles of
    array tasks with an instance asked about are read.
    """

    def __init__(self, layout: RunLayout, run_id: str) -> None:
        self._layout = layout
        self._run_id = run_id
        self._names: dict[str, set[str]] = {}
        self._files: dict[str, dict[str, set[int]]] = {}
        self._batches: dict[str, BatchFile | None] = {}
        self._array_tasks: dict[str, dict[int, int]] = {}
        self._bundles: dict[tuple[str, str, int], dict[int, ResultRecord] | ResultProblem] = {}

    def successes(
        self,
        task: str,
        batch: str,
        elements: Iterable[int],
        one_by_one: list[tuple[str, int]],
    ) -> Iterator[list[Success]]:
        """The successes of submitted ``elements`` of ``task`` in ``batch``, a bundle at a time.

        Yields the rows of each bundle that holds nothing else, read as the iteration reaches
        it (never an empty list). Adds to ``one_by_one`` the ``(task, element)`` whose result
        ``find`` reads: those with a result file of their own, and those in a bundle that
        holds more than successes; it is whole once the iteration ends. An element without
        a result (yet) is in neither.
        """
        names = self._result_names(task)
        pending = set(elements)
        with_file = self._own_files(task).get(batch, set()) & pending
        one_by_one += [(task, element) for element in sorted(with_file)]
        record = self._batch(batch)
        if record is None or record.pack <= 1:
            return
        for array_task, positions in enumerate(array_tasks(len(record.elements), record.pack)):
            own = {record.elements[position] for position in positions}
            waiting = (own & pending) - with_file
            if not waiting or bundle_name(batch, array_task) not in names:
                continue
            documents = bundle_documents(self._layout.bundle(task, batch, array_task))
            rows = None
            if not isinstance(documents, ResultProblem):
                rows = successes_of(documents, **self._who(task, batch), elements=own)
            if rows is None:  # ``find`` reads it line by line, from what was parsed here
                self._bundles[(task, batch, array_task)] = (
                    documents
                    if isinstance(documents, ResultProblem)
                    else first_records(documents, **self._who(task, batch))
                )
                one_by_one += [(task, element) for element in sorted(waiting)]
                continue
            if waiting != own:  # not lines of elements ended or sent out again, nor with a file
                rows = [row for row in rows if row[1] in waiting]
            if rows:
                yield rows

    def find(self, row: InstanceRow) -> ResultRecord | ResultProblem | None:
        """The result of ``row``'s element in its batch; None while there is none."""
        task, batch = row.task, str(row.batch)
        names = self._result_names(task)
        if result_name(row.element, batch) in names:
            path = self._layout.result(task, row.element, batch)
            return read_result(
                path, run_id=self._run_id, task=task, element=row.element, batch=batch
            )
        array_task = self._array_task(batch).get(row.element)
        if array_task is None:
            return None
        key = (task, batch, array_task)
        bundle = self._bundles.get(key)
        if bundle is None:
            if bundle_name(batch, array_task) not in names:
                return None
            path = self._layout.bundle(task, batch, array_task)
            bundle = read_bundle(path, **self._who(task, batch))
            self._bundles[key] = bundle
        if isinstance(bundle, ResultProblem):
            return None if bundle.kind == "missing" else bundle
        return bundle.get(row.element)

    def _own_files(self, task: str) -> dict[str, set[int]]:
        """``batch -> elements`` with a result file of their own, from one pass over the names."""
        found = self._files.get(task)
        if found is None:
            found = self._files[task] = {}
            for name in self._result_names(task):
                element, _, rest = name.partition(".")
                if rest.endswith(".json") and element.isdigit():
                    found.setdefault(rest.removesuffix(".json"), set()).add(int(element))
        return found

    def _who(self, task: str, batch: str) -> dict[str, str]:
        """What every line of a bundle of ``task`` in ``batch`` must name."""
        return {"run_id": self._run_id, "task": task, "batch": batch}

    def _result_names(self, task: str) -> set[str]:
        """The names in ``task``'s results folder: one directory read per task."""
        names = self._names.get(task)
        if names is None:
            names = self._names[task] = result_names(self._layout.results_dir(task))
        return names

    def pack(self, batch: str) -> int | None:
        """How many elements each array task of ``batch`` runs; None without its batch file."""
        record = self._batch(batch)
        return None if record is None else record.pack

    def _batch(self, batch: str) -> BatchFile | None:
        """The batch file of ``batch``; None when it cannot be read."""
        if batch not in self._batches:
            try:
                self._batches[batch] = read_batch(self._layout, batch)
            except (OSError, ValueError):
                self._batches[batch] = None
        return self._batches[batch]

    def _array_task(self, batch: str) -> dict[int, int]:
        """``element -> array task`` of a packed batch; empty for an unpacked one."""
        found = self._array_tasks.get(batch)
        if found is None:
            record = self._batch(batch)
            found = record.array_task_of() if record is not None and record.pack > 1 else {}
            self._array_tasks[batch] = found
        return found
