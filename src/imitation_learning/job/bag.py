"""The job's Dask bag: the game files, partitioned, mapped partition-wise through a step.

The game files become a bag (:func:`files_bag`: ``dask.bag.from_sequence``, one element a
path, partition ``i`` holding the ``i``-th block of :func:`~imitation_learning.job.partitions.
partition_sizes`), mapped partition by partition (``Bag.map_partitions``) through the
per-file step's joined fast path, several files at a time (:func:`processed_bag`). A
partition of the processed bag is one element: that partition's result (a
:class:`~imitation_learning.per_file.results.FileResult` for the in-memory outputs, a
:class:`~imitation_learning.partition_rows.PartitionRows` for the saved dataset).

Dask fuses the bag's layers into one task a partition; :func:`partition_futures` submits
exactly those tasks (``Client.get`` on the optimised graph), each under the bag's own key
(``("process-files-<token>", i)``), so that the dashboard shows one ``process-files`` task
a partition and no alias task after it, and the driver gets the partitions back as they
finish
(:func:`~imitation_learning.cluster.results_as_completed`).

For Python users, :func:`imitation_learning.job.file_results_bag` is a bag of per-file
results built on the same bag.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

import dask

from imitation_learning.allocator import tuned
from imitation_learning.job.partitions import chunks_of

#: The name of the processing layer (``token=`` of ``map_partitions``), the bag's name.
PROCESS_TOKEN = "process-files"
#: The name of the layer that turns a partition of blocks into its paths.
FILES_TOKEN = "game-files"
#: The name (``dask.utils.key_split``) of the tasks that process the files, one a
#: partition: Dask's fusion of the bag's three layers, submitted under the bag's own keys
#: (Dask would name it after every layer it holds, ``from_sequence-game-files-process-files``,
#: which the dashboard's progress bars cut to ``from_sequenc...``).
PROCESS_TASK = PROCESS_TOKEN


def _paths(partition: Iterable[list]) -> list:
    return [path for block in partition for path in block]


def files_bag(paths: Sequence[str], sizes: Sequence[int], contents: Sequence[str] | None = None):
    """The game files as a ``dask.bag.Bag``: one element a path, partition ``i`` the
    ``i``-th block of ``sizes`` files (the job's weighted, deterministic partitions).
    With ``contents`` (each file's content hash, for the result cache), one element a
    ``(path, content hash)`` pair.

    >>> bag = files_bag(["a.csv", "b.csv", "c.csv"], [2, 1])
    >>> bag.npartitions, bag.compute(scheduler="sync")
    (2, ['a.csv', 'b.csv', 'c.csv'])
    """
    import dask.bag as db

    items = list(paths) if contents is None else list(zip(paths, contents, strict=True))
    blocks = chunks_of(items, sizes)
    # one block an element, one element a partition; then one path an element
    return db.from_sequence(blocks, npartitions=max(len(blocks), 1)).map_partitions(
        _paths, token=FILES_TOKEN
    )


def processed_bag(files, step: Callable, *args, token: str = PROCESS_TOKEN):
    """``files`` (a bag of paths) mapped partition-wise through ``step(paths, *args)``,
    whose result is the partition's one element."""
    return files.map_partitions(_one_element, step, *args, token=token)


@tuned  # a worker's malloc thresholds set for the step while it runs (allocator.py)
def _one_element(paths: Iterable[str], step: Callable, *args) -> list:
    return [step(list(paths), *args)]


def partition_tasks(bag) -> tuple[dict, list]:
    """The bag's optimised graph and the key of the one task that computes each partition.

    Dask fuses a partition's layers into one task under a new key and keeps the bag's own
    key as an alias of it (a second task, which a worker runs after the first before it
    asks for its next partition). The alias is left out: the fused task itself is put
    under the bag's key (an older Dask's tuple graph keeps the fused key)."""
    (optimised,) = dask.optimize(bag)
    graph = dict(optimised.__dask_graph__())
    keys, needed = [], {}
    for key in optimised.__dask_keys__():
        node = graph[key]
        if not hasattr(node, "dependencies"):  # an older Dask's graph: an alias is the key
            if _is_key_of(node, graph):
                key = node
            keys.append(key)
            needed[key] = graph[key]
            continue
        deps = list(node.dependencies or ())
        if (
            len(deps) == 1
            and isinstance(deps[0], tuple)
            and deps[0][1:] == key[1:]
            and str(deps[0][0]).endswith(key[0])
            and not getattr(graph.get(deps[0]), "dependencies", ())
        ):
            node = graph[deps[0]].substitute({}, key=key)  # the fused task, the bag's key
        if getattr(node, "dependencies", ()):
            raise AssertionError(f"partition task {key!r} depends on other tasks")
        keys.append(key)
        needed[key] = node
    return needed, keys


def _is_key_of(node, graph: dict) -> bool:
    try:
        return isinstance(node, tuple) and node in graph
    except TypeError:  # a task holding a list: not a key
        return False


def partition_futures(client, bag) -> list:
    """Submit the bag's partitions, one task each (:func:`partition_tasks`); their futures,
    in partition order."""
    if not task_spec_graphs():  # an older Dask: its own submission (an alias a partition)
        return client.compute(bag.to_delayed())
    graph, keys = partition_tasks(bag)
    return client.get(graph, keys, sync=False)


def process_task_name() -> str:
    """The name the tasks processing the files run under on the workers (the dashboard's,
    a performance report's): :data:`PROCESS_TASK` (the bag's name), or an older Dask's own
    fusion name."""
    return PROCESS_TASK if task_spec_graphs() else f"{FILES_TOKEN}-{PROCESS_TOKEN}"


@functools.cache
def task_spec_graphs() -> bool:
    """Whether this Dask's optimised bag graphs are made of task objects (with their
    ``dependencies``), whose fused partitions :func:`partition_tasks` submits without their
    aliases; an older Dask's tuple graphs are submitted as Dask does (``Bag.to_delayed``)."""
    import dask.bag as db

    (optimised,) = dask.optimize(db.from_sequence([0], npartitions=1).map_partitions(len))
    return all(hasattr(node, "dependencies") for node in optimised.__dask_graph__().values())
