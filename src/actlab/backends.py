"""Where an experiment's chunks run: in this process (the default), or as Ray tasks.

The experiment contract (:mod:`actlab.experiments.base`) splits a run into chunks and hands
independent ones over together, ``run_chunks(chunks, [(key, fn, work), ...])``. The run store's
runner (:class:`actlab.store.StoreChunks`) does them one by one. :class:`RayChunks` wraps it: its
``many``

1. restores every chunk the run folder already holds (as the store does);
2. submits the others as Ray tasks, each with ``cpus_per_task`` CPUs and ``gpus_per_task``
   GPUs, retried up to ``max_retries`` times when its worker or node dies (an exception that
   ``fn`` raises is a bug: not retried, it propagates with its message and the tasks not yet
   finished are cancelled);
3. as each task finishes (``ray.wait``), checks that the worker ran the driver's actlab (version
   and git revision, as ``env.json`` records them) at the thread count asked for, then saves its
   result into the run folder (atomically, by the driver only, once per key) and only then
   advances :mod:`actlab.progress` by the chunk's ``work``;
4. returns the results in the order of the items, each read back from its file's bytes (the
   task returns those), so a result is exactly what a resumed run would restore (NumPy arrays
   writable, not views of Ray's read-only object store).

A task receives ``fn`` pickled with ``cloudpickle`` (bytes) together with the contents of the
``--activations-from`` files: it registers those first (an :class:`actlab.activations.Activation`
pickles by name), then unpickles ``fn``, sets torch's threads to its CPUs and calls it. A worker
on another machine needs actlab (same version) installed, not the files. The worker keeps its copy
of a file under ``TMP/actlab-activations/DRIVER/``, which :func:`ray_session` removes at its end
(on this machine: a local Ray's workers all live here).

Results equal the local backend's bit for bit only at equal torch thread counts
(``--ray-cpus-per-task`` sets the tasks'; some reductions change their order with the threads).

Ray is an optional extra (``pip install 'actlab[ray]'``); this module imports it only when used.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actlab import progress
from actlab.experiments.base import Chunk, ChunkRunner
from actlab.store import StoreChunks, chunk_bytes, git_revision, read_chunk

__all__ = [
    "BackendError",
    "RayOptions",
    "RayChunks",
    "ray_session",
    "check_fits",
    "import_ray",
    "RAY_EXTRA",
]

RAY_EXTRA = "install the extra: pip install 'actlab[ray]'"


class BackendError(RuntimeError):
    """A backend that cannot be used (Ray missing, a cluster that cannot be reached, a worker
    with another actlab); the CLI prints it as one line."""


@dataclass(frozen=True)
class RayOptions:
    """How chunks run on Ray.

    Attributes:
        address: An existing cluster (``ray.init(address=...)``, e.g. ``"auto"`` or
            ``"ray://head:10001"``); ``None`` starts a local Ray for the run.
        cpus: CPUs of the local Ray (``None``: all of this machine's); only without
            ``address`` (a cluster has its own).
        cpus_per_task: CPUs Ray reserves for each chunk (torch uses ``max(1, floor(.))``
            threads in it).
        gpus_per_task: GPUs Ray reserves for each chunk (it sets ``CUDA_VISIBLE_DEVICES``).
        max_retries: Attempts after the first when a task's worker dies.
    """

    address: str | None = None
    cpus: int | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpus_per_task) and self.cpus_per_task > 0):
            raise ValueError(f"CPUs per task must be > 0, got {self.cpus_per_task}")
        if not (math.isfinite(self.gpus_per_task) and self.gpus_per_task >= 0):
            raise ValueError(f"GPUs per task must be >= 0, got {self.gpus_per_task}")
        if self.cpus is not None and self.cpus < 1:
            raise ValueError(f"CPUs of the local Ray must be >= 1, got {self.cpus}")
        if self.cpus is not None and self.address:
            raise ValueError("--ray-cpus is for a local Ray; a cluster (--ray-address) has its own")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus_per_task))


def import_ray() -> Any:
    """The ``ray`` module; :class:`BackendError` saying how to install it when it is missing."""
    try:
        import ray
    except ImportError:
        raise BackendError(RAY_EXTRA) from None
    return ray


_TOKEN_WARNING = "ray._private.authentication.authentication_token_setup"  # its logger


@contextmanager
def ray_session(options: RayOptions) -> Iterator[Any]:
    """Ray for the length of the block: the cluster at ``options.address``, or a new local Ray
    (``address="local"``: never a cluster that ``ray start`` left running here, nor one that
    ``RAY_ADDRESS`` names) started now; disconnected (a local one shut down) at the end, and the
    workers' copies of activation files on this machine removed. If this process is already
    connected (a test's Ray, a notebook's), that Ray is used and left running."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = dict(logging_level=logging.WARNING, log_to_driver=True)
    try:
        if options.address:
            ray.init(address=options.address, **quiet)
        else:
            # Ray 2.60 warns that it enabled token authentication on every local start (and how
            # to opt out): nothing to do for a Ray that lives as long as this command
            logging.getLogger(_TOKEN_WARNING).setLevel(logging.ERROR)
            ray.init(address="local", num_cpus=options.cpus, include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as err:
        cause = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if options.address:
            raise BackendError(f"cannot connect to Ray at {options.address}: {cause}") from None
        raise BackendError(f"cannot start a local Ray: {cause}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(_scratch_root() / _DRIVER, ignore_errors=True)


def check_fits(options: RayOptions) -> None:
    """Raise :class:`BackendError` when no live node of the connected Ray has the CPUs and GPUs
    that one task asks for (its tasks would wait for ever). A cluster that adds nodes on demand
    is judged by the nodes it has now."""
    ray = import_ray()
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    need = {"CPU": options.cpus_per_task, "GPU": options.gpus_per_task}
    if any(all(node.get(k, 0) >= v for k, v in need.items()) for node in nodes):
        return
    most = {k: max((node.get(k, 0) for node in nodes), default=0) for k in need}
    raise BackendError(
        f"a task asks for {need['CPU']:g} CPUs and {need['GPU']:g} GPUs, and no node of the Ray "
        f"cluster has them (the largest: {most['CPU']:g} CPUs, {most['GPU']:g} GPUs)"
    )


class RayChunks(ChunkRunner):
    """Chunks as Ray tasks, kept in a run folder by ``store`` (see the module docstring).

    Ray must be initialised (:func:`ray_session`) before the first chunk.

    Args:
        store: The run folder's chunk runner; finished chunks are restored from it and new
            results saved into it, by this process only.
        options: Resources and retries of each task.
        activation_files: ``--activations-from`` files that each task loads before it unpickles
            its ``fn`` (read now, sent by content).
    """

    def __init__(
        self,
        store: StoreChunks,
        options: RayOptions,
        activation_files: Sequence[str | os.PathLike[str]] = (),
    ):
        self.store = store
        self.options = options
        self.files = tuple((str(Path(f).resolve()), Path(f).read_bytes()) for f in activation_files)

    def __call__(self, key: str, fn: Any, work: float = 0) -> Any:
        return self.many([(key, fn, work)])[0]

    def many(self, items: Sequence[Chunk]) -> list[Any]:
        ray = import_ray()
        from ray import cloudpickle  # Ray's own copy

        keys = [key for key, _, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError(f"chunk keys must differ, got {keys}")
        self._expected = {
            "actlab": _actlab_version(),
            "git_revision": git_revision(),
            "torch_threads": self.options.threads,
        }
        results: list[Any] = [None] * len(items)
        pending: dict[Any, int] = {}  # task -> index of its item
        task = _remote_chunk().options(
            num_cpus=self.options.cpus_per_task,
            num_gpus=self.options.gpus_per_task,
            max_retries=self.options.max_retries,
            retry_exceptions=False,
        )
        try:
            for i, (key, fn, work) in enumerate(items):
                found, result = self.store.restore(key, work)
                if found:
                    results[i] = result
                else:
                    blob = cloudpickle.dumps(fn)
                    ref = task.remote(blob, self.files, self.options.threads, _DRIVER)
                    pending[ref] = i
            while pending:
                progress.note(f"{len(pending)} chunks on Ray")
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    results[i] = self._keep(ray, ref, items[i])
        except BaseException:
            # an error or Ctrl-C: keep the chunks that have finished, cancel the others
            ready = (
                ray.wait(list(pending), num_returns=len(pending), timeout=0)[0] if pending else []
            )
            for ref in ready:
                i = pending.pop(ref)
                try:
                    self._keep(ray, ref, items[i])
                except Exception:
                    pass  # the first error is the one raised
            for ref in pending:
                ray.cancel(ref)
            raise
        return results

    def _keep(self, ray: Any, ref: Any, item: Chunk) -> Any:
        """The finished task's result, saved as chunk ``key`` when its worker ran this actlab
        at the threads asked for (:class:`BackendError` otherwise: its numbers are not this
        run's); ``fn``'s own exception re-raised as itself (its remote traceback chained above
        it)."""
        key, _, work = item
        try:
            made_by, data = ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from err
            raise
        for field, want in self._expected.items():
            got = made_by.get(field)
            if field == "git_revision" and (got is None or want is None):
                continue  # a checkout on one side only: the version decides
            if got != want:
                raise BackendError(
                    f"chunk {key}: a Ray worker has {field} {got}, this run {want}; install the "
                    "same actlab on every node (nothing of that chunk was saved)"
                )
        self.store.write(key, data)
        progress.advance(work)
        return read_chunk(data)  # what a resumed run would restore from the file


# ---------------------------------------------------------------------- inside a task
@functools.cache
def _remote_chunk() -> Any:
    """:func:`_run_chunk` as a Ray remote function (made once: Ray exports it per cluster)."""
    return import_ray().remote(_run_chunk)


_DRIVER = f"{socket.gethostname()}-{os.getpid()}"
"""This driver's folder under :func:`_scratch_root` (the workers' copies of activation files)."""


def _scratch_root() -> Path:
    return Path(tempfile.gettempdir()) / "actlab-activations"


def _actlab_version() -> str:
    import actlab

    return actlab.__version__


def _run_chunk(
    blob: bytes, files: tuple[tuple[str, bytes], ...], threads: int, driver: str
) -> tuple[dict[str, Any], bytes]:
    """One chunk in a Ray worker: register the activation files, then ``fn()``.

    Returns:
        ``(made_by, data)``: this worker's actlab version, git revision and torch threads (the
        driver checks them against its own), and the chunk file's bytes (the driver writes
        them as they are).
    """
    import torch
    from ray import cloudpickle

    torch.set_num_threads(threads)
    for where, content in files:
        _load_activation_file(where, content, driver)
    fn = cloudpickle.loads(blob)
    data = chunk_bytes(fn())
    made_by = {
        "actlab": _actlab_version(),
        "git_revision": git_revision(),
        "torch_threads": torch.get_num_threads(),
    }
    return made_by, data


def _load_activation_file(where: str, content: bytes, driver: str) -> None:
    """Register the driver's activation file ``where`` from its content, through a copy of this
    worker's own, ``TMP/actlab-activations/DRIVER/PID/HASH-OF-WHERE/NAME``: one path per file of
    the driver, so that a new version of it (a later run in the same Ray) replaces the old one's
    activations as :func:`actlab.activations.load_activations_file` does for a changed file, and
    the same version again is a no-op. ``DRIVER`` (the driver's host and process) is removed when
    the driver's :func:`ray_session` ends."""
    from actlab.activations import load_activations_file
    from actlab.store import atomic_write_bytes

    digest = hashlib.sha1(where.encode()).hexdigest()[:12]
    name = Path(where).name
    copy = _scratch_root() / driver / str(os.getpid()) / digest / name
    if not copy.exists() or copy.read_bytes() != content:
        atomic_write_bytes(copy, content)
    load_activations_file(copy)
