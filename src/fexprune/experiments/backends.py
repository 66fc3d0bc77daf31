"""Where sweep trials run: a local process pool, or Ray tasks on a cluster (`pip install fexprune[ray]`).

A backend takes one picklable top-level function and a list of argument tuples and yields
`(index, result)` as trials finish, in any order. Both run the very same function with the same
arguments (including the torch thread count), so the same seeds give the same numbers on both.
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator

from fexprune.errors import InputError

BACKENDS = ("local", "ray")


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Backend(ABC):
    threads: int  # torch threads each trial uses

    @abstractmethod
    def map(self, function: Callable[..., Any], jobs: list[tuple]) -> Iterator[tuple[int, Any]]:
        """Run `function(*job)` for every job; yield (job index, result) as each finishes."""

    @abstractmethod
    def describe(self) -> str: ...

    def close(self) -> None:
        """Release what the backend started (pool processes, a local Ray)."""


class LocalBackend(Backend):
    """A spawn-context process pool on this machine; threads split fairly between workers.

    With one worker the trials run in this process (no start-up cost, same numbers).
    """

    def __init__(self, workers: int, cores: int | None = None):
        self.workers = max(1, int(workers))
        self.threads = max(1, (cores or default_workers()) // self.workers)

    def describe(self) -> str:
        return f"{self.workers} local worker{'s' if self.workers > 1 else ''} x {self.threads} thread{'s' if self.threads > 1 else ''}"

    def map(self, function, jobs):
        if self.workers == 1 or len(jobs) <= 1:
            for index, job in enumerate(jobs):
                yield index, function(*job)
            return
        context = multiprocessing.get_context("spawn")  # no fork: torch's thread pools do not survive it
        with ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)), mp_context=context) as pool:
            futures = {pool.submit(function, *job): index for index, job in enumerate(jobs)}
            try:
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = futures.pop(future)
                        yield index, future.result()
            except BrokenProcessPool as error:
                raise RuntimeError(
                    "a sweep worker process died (killed, or out of memory). A script that calls run_sweep "
                    "must guard its body with `if __name__ == '__main__':` (spawned workers import it again). "
                    "Finished trials are kept: rerun with --resume."
                ) from error
            finally:
                for future in futures:
                    future.cancel()


class RayBackend(Backend):
    """Each trial a Ray task with `threads` CPUs. With no address a small local Ray is started (and
    shut down on close); with one, the sweep runs on that cluster, whose nodes must see the data path."""

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1, gpus: float = 0.0):
        try:
            import ray
        except ImportError:
            raise InputError("the ray backend needs Ray: pip install 'fexprune[ray]'") from None
        self._ray = ray
        self.threads = max(1, int(threads))
        self.gpus = max(0.0, float(gpus))  # a fraction of a GPU per trial: Ray packs several trials on one GPU
        self.address = address
        self._started = False
        if not ray.is_initialized():
            if address:
                check_ray_address(address)
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, workers or 1) * self.threads, include_dashboard=False, log_to_driver=False)
                self._started = True

    def describe(self) -> str:
        return f"ray {'at ' + self.address if self.address else 'local'}"

    def map(self, function, jobs):
        ray = self._ray
        remote = ray.remote(num_cpus=self.threads, num_gpus=self.gpus, max_retries=0)(function)
        refs = {remote.remote(*job): index for index, job in enumerate(jobs)}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1)
                for ref in done:
                    index = refs.pop(ref)
                    yield index, ray.get(ref)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def check_ray_address(address: str) -> None:
    """A cluster address that does not answer is refused at once (ray.init would retry for a long while,
    then fail with a traceback); "auto" and "local" are Ray's own lookups, left to it."""
    if address in ("auto", "local"):
        return
    from fexprune.tracking import check_reachable

    check_reachable(address, "the Ray cluster (--address)", default_port=10001 if address.startswith("ray://") else 6379)


def make_backend(name: str, workers: int, address: str | None = None, gpus_per_trial: float = 0.0) -> Backend:
    if name == "local":
        if address:
            raise InputError("--address only applies to --backend ray")
        return LocalBackend(workers)
    if name == "ray":
        return RayBackend(address=address, workers=workers, threads=1, gpus=gpus_per_trial)
    raise InputError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
