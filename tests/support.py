"""What several test files share: signals they generate (small, smooth, seeded) and real gloo processes."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def smooth_images(n: int = 4, side: int = 8, seed: int = 0) -> torch.Tensor:
    """Grey images of smooth random waves, [n, side, side, 1] in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    freq = torch.rand(n, 2, generator=g) * 3
    phase = torch.rand(n, 1, 1, generator=g) * 6
    waves = torch.sin(freq[:, :1, None] * 3 * y + freq[:, 1:, None] * 3 * x + phase)
    return ((waves + 1) / 2).unsqueeze(-1)


def _convert(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """`value` with `leaf` applied to every tensor / array inside its tuples, NamedTuples and lists."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return leaf(value)
    if isinstance(value, tuple):
        items = [_convert(item, leaf) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_convert(item, leaf) for item in value]
    return value


def _member(rank: int, world: int, path: str, target: Callable, args: tuple, queue) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=world)
    try:
        # tensors travel as numpy arrays, by value: a tensor would be shared memory this process frees on exit
        queue.put((rank, _convert(target(rank, *args), lambda t: t.detach().numpy().copy())))
    finally:
        dist.destroy_process_group()


def in_gloo_processes(target: Callable, *args, folder, world: int = 2, timeout: float = 180) -> dict[int, Any]:
    """`target(rank, *args)` in `world` real processes (spawned, one thread each) joined in a gloo group that
    rendezvous through a file in `folder`; returns each rank's result, its arrays as tensors again."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_member, args=(rank, world, str(folder / "rendezvous"), target, args, queue))
                 for rank in range(world)]
    for process in processes:
        process.start()
    results = dict(queue.get(timeout=timeout) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return {rank: _convert(result, torch.from_numpy) for rank, result in results.items()}
