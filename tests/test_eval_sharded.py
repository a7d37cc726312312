"""Evaluators under torchrun: two gloo processes score disjoint shards and rank 0 writes the same results
as one process, byte for byte; an error on one rank ends every rank with it instead of a hang."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vidmatte.cli import main
from vidmatte.data.guidance import SegmenterErrors
from vidmatte.data.perturb import write_perturbed_benchmark
from vidmatte.data.synthetic.clips import ClipSpec
from vidmatte.data.synthetic.folders import write_synthetic_set
from vidmatte.errors import VidmatteError
from vidmatte.parallel.distributed import DistributedContext
from vidmatte.parallel.sharding import gather_shards, is_main, take_shard

TORCHRUN_TIMEOUT = 300


def torchrun(*argv: str) -> subprocess.CompletedProcess:
    """``vidmatte argv`` in two local processes under torchrun (gloo, one thread each)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return subprocess.run(
        [*command, "-m", "vidmatte.cli", *argv],
        env={**env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=TORCHRUN_TIMEOUT,
    )


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three clips (an odd number: shards of 2 and 1) in the VM layout, with a perturbed prediction."""
    root = tmp_path_factory.mktemp("vm")
    write_perturbed_benchmark(root, clips=3, frames=5, size=(48, 32), seed=3)
    return root


@pytest.fixture(scope="module")
def vim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three VIM50-style clips of 2-3 people; their guidance masks (without segmenter errors) serve as the
    prediction."""
    root = tmp_path_factory.mktemp("vim")
    spec = ClipSpec(frames=4, width=48, height=32, instances=(2, 3))
    write_synthetic_set(root, "vim", 3, spec, seed=1, errors=SegmenterErrors.none())
    return root


def _context(rank: int, world_size: int) -> DistributedContext:
    import torch

    return DistributedContext(rank, world_size, rank, torch.device("cpu"))


def test_shards_are_disjoint_cover_the_items_and_keep_their_order() -> None:
    items = [f"clip{i}" for i in range(7)]
    shards = [take_shard(items, _context(rank, 3)) for rank in range(3)]
    assert sorted(itertools.chain(*shards)) == items
    assert [len(s) for s in shards] == [3, 2, 2]
    assert all(s == sorted(s) for s in shards)
    assert take_shard(items, None) == items
    assert is_main(None) and is_main(_context(0, 3)) and not is_main(_context(2, 3))
    # one process: the scoring function sees every item, in order
    assert gather_shards(items, lambda shard: {i: len(shard) for i in shard}, None) == dict.fromkeys(items, 7)


def _gather_with_a_failing_rank(rank: int, port: int, outcomes) -> None:
    """Rank ``rank`` of 2 under gloo: rank 0 fails on its shard, rank 1 scores its own."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    from vidmatte.parallel.distributed import init_distributed, shutdown_distributed

    def score(shard: list[str]) -> dict[str, int]:
        if "clip0" in shard:
            raise VidmatteError("clip0: no such frame")
        return dict.fromkeys(shard, 1)

    context = init_distributed("cpu")
    try:
        gather_shards(["clip0", "clip1", "clip2"], score, context)
        outcomes.put((rank, "no error"))
    except VidmatteError as error:
        outcomes.put((rank, str(error)))
    finally:
        shutdown_distributed(context)


def test_a_failing_shard_is_raised_on_every_rank() -> None:
    spawn = multiprocessing.get_context("spawn")
    outcomes = spawn.Queue()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ranks = [spawn.Process(target=_gather_with_a_failing_rank, args=(r, port, outcomes)) for r in range(2)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(TORCHRUN_TIMEOUT)
    for process in ranks:  # a rank still waiting is the failure under test: end it, then report it
        if process.is_alive():
            process.kill()
    assert [process.exitcode for process in ranks] == [0, 0]
    assert sorted(outcomes.get(timeout=1) for _ in ranks) == [
        (0, "clip0: no such frame"),
        (1, "clip0: no such frame"),
    ]


@pytest.mark.slow
def test_eval_under_torchrun_writes_what_one_process_writes(vm: Path, tmp_path: Path, capsys) -> None:
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert main(["eval", "--pred", str(vm / "pred"), "--true", str(vm / "true"), "--json",
                 str(single / "m.json"), "--csv", str(single / "m.csv")]) == 0  # fmt: skip
    table = capsys.readouterr().out
    result = torchrun("eval", "--pred", str(vm / "pred"), "--true", str(vm / "true"), "--workers", "1",
                      "--json", str(sharded / "m.json"), "--csv", str(sharded / "m.csv"))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (sharded / "m.json").read_bytes() == (single / "m.json").read_bytes()
    assert (sharded / "m.csv").read_bytes() == (single / "m.csv").read_bytes()
    assert result.stdout == table  # rank 0 alone prints
    assert "synthetic" in table and b'"overall"' in (single / "m.json").read_bytes()


@pytest.mark.slow
def test_eval_vim_under_torchrun_writes_what_one_process_writes(vim: Path, tmp_path: Path, capsys) -> None:
    args = ["eval-vim", "--pred", str(vim / "tg_masks"), "--true", str(vim)]
    assert main([*args, "--json", str(tmp_path / "single.json")]) == 0
    table = capsys.readouterr().out
    result = torchrun(*args, "--json", str(tmp_path / "sharded.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "sharded.json").read_bytes() == (tmp_path / "single.json").read_bytes()
    assert result.stdout == table
    rows = table.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["0000", "0001", "0002", "overall"]
    assert float(rows[-1].split()[1]) > 50  # RQ: the masks are the binarised ground truth


@pytest.mark.slow
def test_an_error_on_one_rank_ends_both_with_one_line(vim: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    subprocess.run(["cp", "-r", str(vim / "tg_masks"), str(pred)], check=True)
    missing = sorted((pred / "0002" / "00").iterdir())[1]
    missing.unlink()  # clip 0002 is rank 0's second clip: rank 1 finishes first and must not wait forever
    result = torchrun("eval-vim", "--pred", str(pred), "--true", str(vim), "--json", str(tmp_path / "m.json"))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("vidmatte: error:")]
    # torchrun's agent terminates the other rank as soon as one fails, so that rank may or may not have
    # printed its line by then; test_a_failing_shard_is_raised_on_every_rank shows that it raises too
    assert errors and all(f"{missing.with_suffix('')}.png: no such frame" in e for e in errors)
    # torchrun reports the failed children with a traceback of its own; none comes from vidmatte
    assert not [line for line in result.stderr.splitlines() if 'File "' in line and "/vidmatte/" in line]
    assert not (tmp_path / "m.json").exists()
