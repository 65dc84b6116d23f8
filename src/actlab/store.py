"""The run folder: everything one run produced, written atomically, resumable.

Layout of a run folder::

    config.json       experiment, preset and the resolved config (every field)
    env.json          versions, threads, machine, git revision, seeds
    status.json       {"state": "running" | "done", ...}
    chunks/KEY.pt     results of completed chunks (kept so that an interrupted run resumes)
    metrics.parquet   tidy metrics: one row per member x step x metric
    arrays.npz        named arrays; arrays.json holds their axis names and coordinates
    summary.json      scalars and small tables computed by the experiment
    figures/NAME.png  figures, rebuilt from the above by ``actlab report``
    report.md         the report section, rebuilt likewise

Every file is written to a temporary name in the same folder and then renamed over the target,
so a crash (even ``kill -9``) leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from actlab import progress
from actlab.experiments.base import ChunkRunner, Results

__all__ = ["RunStore", "RunStoreError", "StoreChunks", "atomic_write_bytes", "config_to_dict"]

_UNSAFE = re.compile(r"[^\w.\-=,()]+")


class RunStoreError(RuntimeError):
    """A run folder that cannot be used (unwritable, or holding a different run)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; run folders are for sharing
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which races with threads that
# create files meanwhile.
_UMASK = _read_umask()


def _umask() -> int:
    return _UMASK


def _write_json(path: Path, obj: Any) -> None:
    text = json.dumps(_finite_or_null(obj), indent=2, default=_json_default, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def _finite_or_null(obj: Any) -> Any:
    """NaN and infinities become null: strict JSON has no spelling for them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    return obj


def chunk_filename(key: str) -> str:
    """A file name for a chunk key: the key itself when it is plain, else a cleaned-up key
    with a short hash (so that distinct keys never share a file, also where the file system
    ignores case)."""
    clean = _UNSAFE.sub("_", key)
    if clean == key and key == key.lower():  # "A" and "a" are one file on macOS and Windows
        return f"{key}.pt"
    return f"{clean[:80]}-{hashlib.sha1(key.encode()).hexdigest()[:8]}.pt"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as plain JSON-able values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=_json_default))


def same_config(saved: dict[str, Any] | None, cfg: Any) -> bool:
    """Whether a saved ``config`` record (from ``config.json``) describes ``cfg``.

    A field the record lacks counts as equal when ``cfg`` holds that field's default: a field
    added to the Config after the run was made (such as ``device``) whose default is what the old
    code did. Any other difference, or a field the Config no longer has, is a different run.
    """
    if saved is None:
        return False
    new = config_to_dict(cfg)
    if set(saved) - set(new):
        return False
    for f in dataclasses.fields(cfg):
        if f.name in saved:
            if saved[f.name] != new[f.name]:
                return False
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            return False
        if dataclasses.is_dataclass(default):
            default = dataclasses.asdict(default)
        if json.loads(json.dumps(default, default=_json_default)) != new[f.name]:
            return False
    return True


class RunStore:
    """One run folder. The CLI creates it; experiments never see it (only its chunk runner).

    Args:
        path: The folder (created if needed).
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)

    # ------------------------------------------------------------------ lifecycle
    def begin(
        self, experiment: str, preset: str, cfg: Any, backend: dict[str, Any] | None = None
    ) -> None:
        """Claim the folder for this run, or continue it if it holds the same run.

        ``backend`` is where its chunks run, recorded in ``env.json`` (default
        ``{"backend": "local"}``; see :func:`environment`).

        Raises:
            RunStoreError: if the folder cannot be written, or holds a run of another
                experiment or config (the message says which field differs).
        """
        record = {"experiment": experiment, "preset": preset, "config": config_to_dict(cfg)}
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise RunStoreError(f"cannot write to run folder {self.path}: {err.strerror}") from None
        existing = self.path / "config.json"
        if existing.exists():
            old = json.loads(existing.read_text())
            if old.get("experiment") != experiment or not same_config(old.get("config"), cfg):
                diff = _first_difference(old, record)
                raise RunStoreError(
                    f"{self.path} holds a different run ({diff}); choose another --out folder"
                )
        else:
            _write_json(existing, record)
        _write_json(self.path / "env.json", environment(cfg, backend))
        self._status("running")

    def finish(self) -> None:
        """Mark the run complete (after results, figures and report are written)."""
        self._status("done")

    def is_done(self) -> bool:
        status = self.path / "status.json"
        return status.exists() and json.loads(status.read_text()).get("state") == "done"

    def read_config(self) -> dict[str, Any]:
        path = self.path / "config.json"
        if not path.exists():
            raise RunStoreError(f"{self.path} is not a run folder (no config.json)")
        return json.loads(path.read_text())

    def made_by_other_code(self) -> str | None:
        """``"actlab V (git R)"`` when the run's env.json names another actlab version or git
        revision than the code running now (a reused run then holds the old code's numbers);
        ``None`` when they agree or cannot be told apart (no git checkout)."""
        path = self.path / "env.json"
        if not path.exists():
            return None
        env = json.loads(path.read_text())
        from actlab import __version__

        then, now = env.get("git_revision"), _git_revision()
        if env.get("actlab") == __version__ and (then is None or now is None or then == now):
            return None
        rev = f" (git {then[:10]})" if then else ""
        return f"actlab {env.get('actlab')}{rev}"

    def _status(self, state: str) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        _write_json(self.path / "status.json", {"state": state, "updated": now})

    # ------------------------------------------------------------------ chunks
    def chunk_runner(self, on_chunk: Callable[[str, bool], None] | None = None) -> StoreChunks:
        """A :class:`StoreChunks` on this folder's ``chunks/``: ``chunks(key, fn, work=0)``
        returns the saved result of ``key`` if there is one, otherwise calls ``fn()`` and saves
        its result before returning it; ``chunks.many(items)`` does so for each in turn.

        ``work`` is what the chunk counts for in :mod:`actlab.progress` (a restored chunk
        advances by all of it at once). ``on_chunk(key, restored)`` is called after each chunk.
        """
        return StoreChunks(self.path / "chunks", on_chunk)

    # ------------------------------------------------------------------ results
    def save_results(self, results: Results) -> None:
        buffer = io.BytesIO()
        results.metrics.to_parquet(buffer, index=False)
        atomic_write_bytes(self.path / "metrics.parquet", buffer.getvalue())
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **results.arrays)
        atomic_write_bytes(self.path / "arrays.npz", buffer.getvalue())
        _write_json(self.path / "arrays.json", {"axes": results.axes, "coords": results.coords})
        _write_json(self.path / "summary.json", results.summary)

    def load_results(self) -> Results:
        try:
            metrics = pd.read_parquet(self.path / "metrics.parquet")
            with np.load(self.path / "arrays.npz") as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads((self.path / "arrays.json").read_text())
            summary = json.loads((self.path / "summary.json").read_text())
        except FileNotFoundError as err:
            raise RunStoreError(
                f"{self.path} has no complete results ({Path(err.filename).name} "
                "missing); run the experiment first"
            ) from None
        axes = {k: tuple(v) for k, v in meta["axes"].items()}
        return Results(metrics, arrays, axes, meta.get("coords", {}), summary)

    def save_figure(self, name: str, fig: Any, dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``figures/NAME.png``, or an object with ``to_gif()``
        (an :class:`actlab.plotting.animation.Animation`) as ``figures/NAME.gif`` (atomically)."""
        if hasattr(fig, "to_gif"):
            path = self.path / "figures" / f"{name}.gif"
            atomic_write_bytes(path, fig.to_gif())
            return path
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        path = self.path / "figures" / f"{name}.png"
        atomic_write_bytes(path, buffer.getvalue())
        return path

    def save_report(self, markdown: str) -> Path:
        path = self.path / "report.md"
        atomic_write_bytes(path, markdown.encode())
        return path


def chunk_bytes(result: Any) -> bytes:
    """A chunk's result as the bytes of its file (:func:`torch.save`)."""
    buffer = io.BytesIO()
    torch.save(result, buffer)
    return buffer.getvalue()


def read_chunk(data: bytes) -> Any:
    """The result that :func:`chunk_bytes` wrote (NumPy arrays come back writable)."""
    return torch.load(io.BytesIO(data), weights_only=False)


class StoreChunks(ChunkRunner):
    """The run store's chunk runner: each chunk's result is kept as ``FOLDER/KEY.pt``
    (:func:`chunk_filename`), written atomically, and restored instead of recomputed.

    :meth:`restore` and :meth:`save` are its two halves, for a backend that computes chunks
    elsewhere (:mod:`actlab.backends`) and keeps them here.

    Args:
        folder: The run folder's ``chunks/``.
        on_chunk: Called as ``on_chunk(key, restored)`` after each chunk is restored or saved.
    """

    def __init__(self, folder: Path, on_chunk: Callable[[str, bool], None] | None = None):
        self.folder = Path(folder)
        self.on_chunk = on_chunk

    def path(self, key: str) -> Path:
        return self.folder / chunk_filename(key)

    def restore(self, key: str, work: float = 0) -> tuple[bool, Any]:
        """``(True, result)`` for a chunk saved earlier (progress advances by its ``work``),
        ``(False, None)`` for one that is not."""
        path = self.path(key)
        if not path.exists():
            return False, None
        progress.note(f"{key} (restored)")
        result = torch.load(path, weights_only=False)
        progress.advance(work)
        if self.on_chunk is not None:
            self.on_chunk(key, True)
        return True, result

    def save(self, key: str, result: Any) -> None:
        """Keep ``result`` as the chunk ``key`` (atomically: a crash leaves no half file)."""
        self.write(key, chunk_bytes(result))

    def write(self, key: str, data: bytes) -> None:
        """Keep ``data`` (:func:`chunk_bytes` of a result, made elsewhere) as the chunk ``key``."""
        atomic_write_bytes(self.path(key), data)
        if self.on_chunk is not None:
            self.on_chunk(key, False)

    def __call__(self, key: str, fn: Callable[[], Any], work: float = 0) -> Any:
        found, result = self.restore(key, work)
        if found:
            return result
        progress.note(key)
        with progress.span(work):
            result = fn()
        self.save(key, result)
        return result


def _first_difference(old: dict, new: dict) -> str:
    if old.get("experiment") != new["experiment"]:
        return f"experiment {old.get('experiment')!r}, not {new['experiment']!r}"
    for key, value in new["config"].items():
        if old.get("config", {}).get(key) != value:
            return f"{key}={old.get('config', {}).get(key)!r} there, {value!r} here"
    return "different config"


def environment(cfg: Any, backend: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions, threads, machine, git revision and seeds: what is needed to reproduce a run.

    ``backend`` (default ``{"backend": "local"}``) says where the chunks ran; with Ray it holds
    ``ray_task_threads``, the torch threads of each task (``torch_threads`` is this process's),
    and the CPUs and GPUs reserved per task.
    """
    import matplotlib

    import actlab

    seeds = {k: v for k, v in config_to_dict(cfg).items() if "seed" in k}
    return {
        "actlab": actlab.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "matplotlib": matplotlib.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "git_revision": _git_revision(),
        "seeds": seeds,
        **(backend or {"backend": "local"}),
    }


def git_revision() -> str | None:
    """The git revision (``HEAD``) of the checkout actlab runs from; ``None`` outside one."""
    return _git_revision()


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
