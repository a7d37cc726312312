"""Work split over the processes of a ``torchrun`` launch: each rank takes a disjoint shard of the items.

The evaluators (``eval``, ``eval-vim``) score their shard of the clips and every rank receives all the
per-clip results (``torch.distributed`` object gathering, gloo on CPU), so that the dataset means are
computed from the same per-clip values in the same order as in one process: the result is identical.
Batch matting (:mod:`vidmatte.inference.batch`) takes its shard of the items the same way.

The rank and world size come from :func:`vidmatte.parallel.distributed.init_distributed`; torch is
imported only when the process was launched with more than one rank.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from vidmatte.errors import VidmatteError

if TYPE_CHECKING:
    from vidmatte.parallel.distributed import DistributedContext

Item = TypeVar("Item")
Result = TypeVar("Result")


@contextlib.contextmanager
def process_group() -> Iterator[DistributedContext | None]:
    """Join the process group (gloo) when launched by ``torchrun`` with several ranks, and leave it on exit.

    Yields:
        The rank's context, or ``None`` in a process started without a launcher.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield None
        return
    from vidmatte.parallel.distributed import init_distributed, shutdown_distributed

    # the group only carries results and errors, so gloo fits any machine
    context = init_distributed("cpu")
    try:
        yield context
    finally:
        shutdown_distributed(context)


def is_main(context: DistributedContext | None) -> bool:
    """Whether this process prints and writes the results: rank 0, or the only process."""
    return context is None or context.is_main


def take_shard(items: Sequence[Item], context: DistributedContext | None) -> list[Item]:
    """This rank's items: every ``world_size``-th one from position ``rank`` (all of them without a group).

    Shards are disjoint, cover ``items``, and differ in length by at most one.
    """
    if context is None:
        return list(items)
    return list(items[context.rank :: context.world_size])


def gather_shards(
    items: Sequence[Item],
    score: Callable[[list[Item]], dict[str, Result]],
    context: DistributedContext | None,
) -> dict[str, Result]:
    """Run ``score`` on this rank's shard and return every rank's results merged, on every rank.

    Args:
        items: the whole work list, in the same order on every rank.
        score: maps a list of items to results keyed by a unique name per item.
        context: the process group, or ``None`` for one process (``score(items)``).

    Raises:
        VidmatteError: on every rank if ``score`` raised on any (a failing rank raises its own error,
            the others the first one by rank order), so that no rank waits forever for one that failed.
    """
    if context is None or not context.distributed:
        return score(list(items))
    from vidmatte.parallel.distributed import gather_objects

    failure: Exception | None = None
    try:
        outcome: tuple[dict[str, Result] | None, str | None] = (score(take_shard(items, context)), None)
    except VidmatteError as error:
        failure, outcome = error, (None, str(error))
    except Exception as error:  # a bug: still tell the other ranks, then raise it here with its traceback
        failure, outcome = error, (None, f"rank {context.rank} failed: {type(error).__name__}: {error}")
    gathered = gather_objects(context, outcome)
    if failure is not None:
        raise failure
    errors = [error for _, error in gathered if error is not None]
    if errors:
        raise VidmatteError(errors[0])
    merged: dict[str, Result] = {}
    for results, _ in gathered:
        merged.update(results or {})
    return merged
