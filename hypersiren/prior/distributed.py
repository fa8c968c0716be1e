"""Data-parallel training over the processes `torchrun` starts: which process this is (`Ranks`), the
process group's life (`join_torchrun`), each process's rows of a step's batch, and the few collectives
the trainer needs.

The design (docs/decisions.md, "Distributed data parallel"): every process draws the whole global batch
of a step from the run's one generator, exactly as a single process does, so every process holds the
same batch and the same generator state. Process `r` of `W` computes the loss on its consecutive share
of the rows (`shard_rows`; in micro-batches of at most `train.micro_batch` signals when set), each part
weighted by its fraction of the global batch, and DistributedDataParallel sums the gradients over the
processes. Every process then clips and steps Adam on identical gradients. A step is therefore the
single-process step on the same global batch, up to the order of float sums, whatever the number of
processes; a checkpoint holds nothing about them, so a run resumes with any number.

This needs every loss to be a mean over the batch of per-signal terms, each signal weighing the same
(`prior_loss`, `cnp_loss` and the image and shape losses are): then the global batch's loss is the sum
of its parts' losses weighted by their fractions of the batch.
"""

from __future__ import annotations

import inspect
import os
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from itertools import chain
from typing import Any, Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

T = TypeVar("T")
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # what torchrun sets for each process it starts


@dataclass(frozen=True)
class Ranks:
    """This process among those training one run: `rank` of `world_size`, collectives on `device`.

    `Ranks()` is a process training alone: every collective returns its input and nothing is wrapped.
    `join_torchrun` gives the ranks of a process started by torchrun (`joined=True`)."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # the process's device, where collectives' tensors live
    joined: bool = False  # a member of a torch.distributed process group

    def __post_init__(self):
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"Ranks: expected 0 <= rank < world_size, got rank={self.rank}, "
                             f"world_size={self.world_size}")

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes the run folder, logs and decides when to stop."""
        return self.rank == 0

    def rows(self, batch_size: int, micro_batch: int | None = None) -> list[slice]:
        """This process's rows of a global batch (`shard_rows`)."""
        return shard_rows(batch_size, self.rank, self.world_size, micro_batch)

    def share(self, value: T) -> T:
        """Rank 0's `value` (any picklable object) on every process."""
        if not self.joined:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def decide(self, *flags: bool) -> tuple[bool, ...]:
        """Rank 0's `flags` on every process (one small broadcast), so that all take the same branch."""
        if not self.joined:
            return tuple(bool(f) for f in flags)
        values = torch.tensor([int(bool(f)) for f in flags], dtype=torch.int64, device=self.device)
        dist.broadcast(values, src=0)
        return tuple(bool(v) for v in values.tolist())

    def sum(self, values: Tensor) -> Tensor:
        """`values` summed over the processes (a new tensor on every process)."""
        return self.start_sum(values)()

    def start_sum(self, values: Tensor) -> Callable[[], Tensor]:
        """`sum(values)` started now and read by calling the result, so that this process can go on (with the
        optimizer step, say) while the processes exchange it."""
        if not self.joined:
            return lambda: values
        total = values.detach().clone()
        work = dist.all_reduce(total, op=dist.ReduceOp.SUM, async_op=True)

        def result() -> Tensor:
            work.wait()
            return total

        return result

    def copy_from_main(self, module: nn.Module) -> None:
        """Overwrite `module`'s parameters and buffers with rank 0's, in place."""
        if not self.joined:
            return
        with torch.no_grad():
            for tensor in chain(module.parameters(), module.buffers()):
                dist.broadcast(tensor, src=0)

    def on_main(self, fn: Callable[[], T]) -> T | None:
        """`fn()` on rank 0 alone (None elsewhere), every process waiting for it; when it raises, every
        process raises the same type of error with the same message, so that all stop together."""
        result, failure = None, None
        if self.main:
            try:
                result = fn()
            except Exception as error:  # shared below, then raised again on rank 0
                failure = error
        shared = self.share(None if failure is None else (type(failure), str(failure)))
        if failure is not None:
            raise failure
        if shared is not None:
            kind, message = shared
            try:
                error = kind(message)
            except Exception:  # an error type that cannot be rebuilt from its message alone
                error = RuntimeError(f"rank 0 failed: {kind.__name__}: {message}")
            raise error
        return result

    def parallel(self, loss: nn.Module, batch: Any, batch_size: int) -> nn.Module:
        """A loss module (`TrainingLoss`) wrapped in DistributedDataParallel, which averages the processes'
        gradients in backward, when this process is one of a process group; else `loss` itself. `batch`: a
        batch of `batch_size` signals, on one of which to find the parameters the loss does not reach."""
        if not self.joined:
            return loss
        # DDP must be told of parameters that get no gradient (a basis prior's noise under a set encoder),
        # and warns when told so of a model that has none
        unused = unused_parameters(loss, slice_rows(batch, slice(0, 1), batch_size))
        # buffers are constants, the same everywhere: no broadcast at every forward, which would also pair up
        # wrongly when processes run different numbers of micro-batches (older torch: broadcast_buffers)
        ddp = nn.parallel.DistributedDataParallel
        no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                          else {"broadcast_buffers": False})
        return ddp(loss, device_ids=None, find_unused_parameters=bool(unused), **no_buffer_sync)


def shard_rows(batch_size: int, rank: int, world_size: int, micro_batch: int | None = None) -> list[slice]:
    """The rows of a global batch that process `rank` of `world_size` computes, as consecutive slices of
    at most `micro_batch` rows (None: one slice). The batch is cut into `world_size` consecutive shards
    whose sizes differ by at most one; every process needs at least one row."""
    if not 0 <= rank < world_size:
        raise ValueError(f"shard_rows: expected 0 <= rank < world_size, got {rank}, {world_size}")
    if batch_size < world_size:
        raise ValueError(f"shard_rows: a global batch of {batch_size} signals cannot give each of {world_size} "
                         f"processes one; use a batch size of at least {world_size} or fewer processes")
    if micro_batch is not None and micro_batch < 1:
        raise ValueError(f"shard_rows: micro_batch must be >= 1 or None, got {micro_batch}")
    start, stop = rank * batch_size // world_size, (rank + 1) * batch_size // world_size
    step = stop - start if micro_batch is None else micro_batch
    return [slice(first, min(first + step, stop)) for first in range(start, stop, step)]


def slice_rows(batch: Any, rows: slice, batch_size: int) -> Any:
    """The rows `rows` of a batch record: a NamedTuple (nested ones included) of batch-first tensors
    `[batch_size, ...]` and None entries, like `Batch`, `Context` or a modality's own record."""
    if rows == slice(0, batch_size):
        return batch
    if batch is None:
        return None
    if isinstance(batch, Tensor):
        if batch.dim() == 0 or batch.shape[0] != batch_size:
            raise ValueError(f"slice_rows: expected every tensor of the batch to be batch-first [{batch_size}, ...] "
                             f"so it can be split between processes, got {tuple(batch.shape)} (expand shared "
                             "tensors to the batch)")
        return batch[rows]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(slice_rows(field, rows, batch_size) for field in batch))
    raise TypeError(f"slice_rows: expected a NamedTuple of batch-first tensors, got {type(batch).__name__}")


class TrainingLoss(nn.Module):
    """A trainer's `compute_loss(batch)` as a module owning the model, so that DistributedDataParallel sees
    the whole loss as its forward (a modality's loss may call the model's `encode` and `decode` rather
    than its forward)."""

    def __init__(self, model: nn.Module, compute_loss: Callable[[Any], Any]):
        super().__init__()
        self.model = model
        self.compute_loss = compute_loss

    def forward(self, batch: Any) -> Any:
        return self.compute_loss(batch)


def unused_parameters(loss: nn.Module, batch: Any) -> list[str]:
    """Names of the trainable parameters of `loss` that `loss(batch).total` does not reach: one forward and
    backward, with every gradient cleared (set to None) before and after."""
    loss.zero_grad(set_to_none=True)
    loss(batch).total.backward()
    names = [name for name, p in loss.named_parameters() if p.requires_grad and p.grad is None]
    loss.zero_grad(set_to_none=True)
    return names


def accumulate_gradients(loss: nn.Module, batch: Any, *, batch_size: int, micro_batch: int | None, ranks: Ranks,
                         autocast: Callable[[], AbstractContextManager] = nullcontext,
                         scaler: torch.amp.GradScaler | None = None) -> Callable[[], tuple[float, dict[str, float]]]:
    """Backward of the global batch's loss into the parameters' `.grad`, computed over this process's
    rows (`ranks.rows`), one micro-batch at a time, and summed over the processes. `loss(part)` returns a
    record with a scalar `total` and named scalar `terms`, each a mean over the part's signals. Returns a
    function that gives the global batch's total and terms (the same on every process), in float32 whatever
    the precision: their sum over the processes is under way when this returns, so a trainer steps the
    optimizer before calling it (one exchange's latency saved per step).

    A part of `n` rows is weighted by `n / batch_size`; DistributedDataParallel averages the processes'
    gradients, hence the extra factor `world_size`. Gradients are exchanged once, after the last part.
    `autocast()`: a context for each forward (`devices.autocast`; the backward runs outside it, as torch
    recommends); `scaler`: fp16's gradient scaler, which scales each part's loss before its backward."""
    parts = ranks.rows(batch_size, micro_batch)
    sums, names = None, ()
    for index, rows in enumerate(parts):
        weight = (rows.stop - rows.start) / batch_size
        accumulating = index < len(parts) - 1 and isinstance(loss, nn.parallel.DistributedDataParallel)
        with loss.no_sync() if accumulating else nullcontext():
            with autocast():
                part = loss(slice_rows(batch, rows, batch_size))
            weighted = part.total * (weight * ranks.world_size)
            (weighted if scaler is None else scaler.scale(weighted)).backward()
        names = tuple(part.terms)
        # float32 at least: a term computed under autocast may be bfloat16 / float16 (float64 stays float64)
        values = torch.stack([t.detach().to(torch.promote_types(t.dtype, torch.float32))
                              for t in (part.total, *part.terms.values())]) * weight
        sums = values if sums is None else sums + values
    summed = ranks.start_sum(sums)

    def totals() -> tuple[float, dict[str, float]]:
        total, *terms = summed().tolist()
        return total, dict(zip(names, terms))

    return totals


def launched_rank() -> int:
    """This process's rank as torchrun set it in the environment (0 when not started by torchrun), for
    choosing what to log before the process group exists."""
    return int(os.environ.get("RANK", "0"))


@contextmanager
def join_torchrun(device: torch.device) -> Iterator[Ranks]:
    """The ranks of this process. Started by torchrun (`RANK`, `WORLD_SIZE`, `LOCAL_RANK` in the
    environment), it joins the process group for the block (NCCL on CUDA, each process on
    `cuda:LOCAL_RANK`; gloo on the CPU) and leaves it at the end; otherwise it is a single process on
    `device` (`Ranks(device=device)`)."""
    device = torch.device(device)
    found = {name: os.environ.get(name) for name in TORCHRUN_VARIABLES}
    if all(value is None for value in found.values()):
        yield Ranks(device=device)
        return
    if any(value is None for value in found.values()):
        missing = ", ".join(name for name, value in found.items() if value is None)
        raise ValueError(f"join_torchrun: {missing} not set while other torchrun variables are; start several "
                         "processes with torchrun (python -m torch.distributed.run --nproc_per_node N ...)")
    rank, world_size, local_rank = (int(found[name]) for name in TORCHRUN_VARIABLES)
    if device.type == "cuda":
        if device.index is not None and world_size > 1:
            raise ValueError(f"join_torchrun: under torchrun each process trains on cuda:LOCAL_RANK; pass "
                             f"--device cuda, not {device}")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"join_torchrun: process of local rank {local_rank} needs cuda:{local_rank}, but this "
                             f"machine has {torch.cuda.device_count()} CUDA device(s); start at most that many "
                             "processes per node")
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"join_torchrun: distributed training runs on CUDA devices (NCCL) or the CPU (gloo), "
                         f"not on {device}")
    dist.init_process_group(backend, rank=rank, world_size=world_size,
                            device_id=device if device.type == "cuda" else None)
    try:
        yield Ranks(rank, world_size, device, joined=True)
        dist.barrier()  # every process is done with the group before any tears it down (gloo aborts otherwise)
    finally:
        dist.destroy_process_group()
