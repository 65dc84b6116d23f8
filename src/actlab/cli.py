"""The command line: the only place that parses arguments and picks paths.

    actlab list activations|experiments|probes
    actlab run EXPERIMENT [--preset smoke|default|full] [--out DIR] [--set key=value ...]
    actlab report RUN_DIR
    actlab tutorial [--out DIR] [--runs DIR] [--preset PRESET]
    actlab sweep EXPERIMENT [--preset P] [--grid KEY=V1,V2 ...] [--random N KEY=LO:HI ...]
                 [--seeds K] [--set KEY=VALUE ...] [--out DIR] [--dry-run] [--max-members M]

``run``, ``tutorial`` and ``sweep`` take ``--device DEV`` (cpu, cuda, cuda:N), shorthand for
``--set device=DEV`` on every experiment whose config has a ``device`` field (those that train
ensembles or agents; the others run on the CPU as always); the tutorial puts such runs in
``NAME-PRESET-DEV`` folders.

Every subcommand also takes ``--activations-from FILE`` (repeatable): a Python file that
registers activations of the user's own (see ``examples/my_activations.py`` and
:func:`actlab.activations.load_activations_file`), loaded and checked before the command runs, so
that its names are accepted wherever an activation name is. A run folder records each such file
(absolute path and sha256, in ``activation_files.json``); ``actlab report RUN_DIR`` loads them
again from there, and refuses, in one line, a file that is gone or has changed.

Bad input (an unknown name, a value of the wrong type or out of range, a folder that cannot be
written) prints one line, with the closest valid name where that helps, and exits with status 2.

Which errors are whose: everything the user typed is checked before any work starts (argparse,
:func:`parse_overrides`, each experiment's ``Config.__post_init__``, the run store's folder
checks) and raised as :class:`UsageError`. An exception raised later, while an experiment runs,
is a bug in actlab, not bad input: it keeps its traceback. The exception: with ``--backend ray``,
Ray's own failures during a run (a worker lost after every retry, out of memory) and a worker
with another actlab are :class:`RunFailed`, one line, exit status 1, the saved chunks kept.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import hashlib
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main", "parse_overrides", "UsageError"]


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


class RunFailed(Exception):
    """A run its backend stopped (a Ray worker lost after all its retries, out of memory, a
    worker with another actlab): reported as one line, exit status 1; saved chunks are kept."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``actlab`` console script; returns the exit status."""
    try:
        return _dispatch(sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        print(f"actlab: error: {err}", file=sys.stderr)
        return 2
    except RunFailed as err:
        print(f"actlab: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("actlab: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _activations_option() -> argparse.ArgumentParser:
    """The option every subcommand takes (give it as ``parents=[...]`` to a new subcommand)."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--activations-from",
        dest="activations_from",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a Python file that registers activations with actlab.register (repeatable)",
    )
    return common


def _backend_options() -> argparse.ArgumentParser:
    """Where chunks run (``run``, ``tutorial``, ``sweep``): see :mod:`actlab.backends`."""
    opts = _Parser(add_help=False)
    opts.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="run chunks here one by one (local) or as Ray tasks (ray)",
    )
    opts.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="an existing Ray cluster (default: a local Ray started for the run)",
    )
    opts.add_argument("--ray-cpus", type=int, metavar="N", help="CPUs of the local Ray (all)")
    opts.add_argument(
        "--ray-cpus-per-task", type=float, default=1.0, metavar="N", help="CPUs per chunk (1)"
    )
    opts.add_argument(
        "--ray-gpus-per-task", type=float, default=0.0, metavar="G", help="GPUs per chunk (0)"
    )
    return opts


def _device_option() -> argparse.ArgumentParser:
    """``--device DEV`` (``run``, ``tutorial``, ``sweep``): see :func:`_with_device`."""
    opts = _Parser(add_help=False)
    opts.add_argument(
        "--device",
        metavar="DEV",
        help="cpu, cuda or cuda:N: --set device=DEV for every experiment with a device field",
    )
    return opts


def _with_device(config_cls: type, overrides: list[str], device: str | None) -> list[str]:
    """``overrides`` plus ``device=DEV`` when ``--device DEV`` was given and ``config_cls`` has
    a ``device`` field (experiments without one run on the CPU, unchanged): ``--device DEV`` is
    shorthand for ``--set device=DEV``, run folder name included."""
    if device is None or "device" not in {f.name for f in dataclasses.fields(config_cls)}:
        return overrides
    if any(item.partition("=")[0].strip() == "device" for item in overrides):
        raise UsageError("give the device once: --device DEV or --set device=DEV, not both")
    return [*overrides, f"device={device}"]


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="actlab", description="A laboratory for activation functions.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = [_activations_option()]
    backend = [_backend_options(), _device_option()]  # where chunks run, and on which device

    p_list = sub.add_parser("list", help="list activations, experiments or probes", parents=common)
    p_list.add_argument("what", choices=("activations", "experiments", "probes"))

    p_run = sub.add_parser(
        "run",
        help="run an experiment into a run folder",
        add_help=False,
        parents=common + backend,
    )
    p_run.add_argument("experiment", nargs="?")
    p_run.add_argument("--preset", default="default", help="smoke, default or full")
    p_run.add_argument(
        "--out", type=Path, help="run folder (default runs/EXPERIMENT-PRESET[-HASH])"
    )
    p_run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (repeatable); see 'actlab run EXP --help'",
    )
    p_run.add_argument("-h", "--help", action="store_true", help="show the experiment's fields")

    p_report = sub.add_parser(
        "report", help="rebuild figures and report of a run folder", parents=common
    )
    p_report.add_argument("run_dir", type=Path)

    p_tut = sub.add_parser(
        "tutorial",
        help="run every experiment and build the HTML tutorial",
        parents=common + backend,
    )
    p_tut.add_argument("--out", type=Path, default=Path("tutorial"), help="tutorial folder")
    p_tut.add_argument("--runs", type=Path, default=Path("runs"), help="where the runs go")
    p_tut.add_argument("--preset", default="default", help="preset of every experiment")
    _add_sweep_parser(sub, parents=common + backend)
    return parser


def _dispatch(argv: list[str]) -> int:
    global _ACTIVATION_FILES
    args = _build_parser().parse_args(argv)
    _ACTIVATION_FILES = _load_activation_files(getattr(args, "activations_from", []))
    with _backend(args):
        return _command(args)


def _command(args: argparse.Namespace) -> int:
    if args.command == "list":
        return _cmd_list(args.what)
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "report":
        return _cmd_report(args.run_dir)
    if args.command == "sweep":
        return _cmd_sweep(args)
    return _cmd_tutorial(args)


# ---------------------------------------------------------------------- list
def _cmd_list(what: str) -> int:
    if what == "activations":
        from actlab.activations import get_activation, list_activations

        for name in list_activations():
            act = get_activation(name)
            print(f"{name:16s} {act.reference}")
    elif what == "experiments":
        from actlab.experiments import get_experiment, list_experiments

        for name in list_experiments():
            spec = get_experiment(name)
            print(f"{name:16s} {spec.title} (presets: {', '.join(spec.presets)})")
    else:
        from actlab.probes import METRICS

        for key, info in METRICS.items():
            print(f"{key:28s} {info.definition}")
    return 0


# ---------------------------------------------------------------------- run
def _experiment(name: str | None):
    from actlab.experiments import get_experiment, list_experiments

    if not name:
        raise UsageError(f"run needs an experiment name: {', '.join(list_experiments())}")
    try:
        return get_experiment(name)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _cmd_run(args: argparse.Namespace) -> int:
    spec = _experiment(args.experiment)
    if args.help:
        print(_fields_help(spec))
        return 0
    overrides = _with_device(spec.Config, args.overrides, args.device)
    cfg = _resolve_config(spec, args.preset, overrides)
    out = args.out or Path("runs") / _default_folder(spec.name, args.preset, overrides)
    path = _execute(spec, args.preset, cfg, out)
    print(path)
    return 0


def _resolve_config(spec, preset: str, overrides: list[str]):
    try:
        base = spec.preset(preset)
    except ValueError as err:
        raise UsageError(str(err)) from None
    changes = parse_overrides(type(base), overrides)
    try:
        return dataclasses.replace(base, **changes)
    except (ValueError, TypeError) as err:
        raise UsageError(f"{spec.name}: {err}") from None


def _files_tag() -> str:
    """``""``, or ``-`` and a digest of the activation files loaded (paths and contents): a run
    made with other files, or another version of them, goes to a folder of its own."""
    if not _ACTIVATION_FILES:
        return ""
    lines = [f"--activations-from {f['path']} {f['sha256']}" for f in _ACTIVATION_FILES]
    return "-" + hashlib.sha1("\n".join(lines).encode()).hexdigest()[:8]


def _default_folder(name: str, preset: str, overrides: list[str]) -> str:
    # A run with activations from a file (or another version of it) gets a folder of its own.
    files = [f"--activations-from {f['path']} {f['sha256']}" for f in _ACTIVATION_FILES]
    if not overrides and not files:
        return f"{name}-{preset}"
    digest = hashlib.sha1("\n".join(sorted(overrides) + files).encode()).hexdigest()[:8]
    return f"{name}-{preset}-{digest}"


def _execute(
    spec, preset: str, cfg, out: Path, label: str | None = None, inputs: dict | None = None
) -> Path:
    """Run (or resume, or reuse) one experiment into ``out``; returns the folder.

    An experiment that reads other runs (``spec.needs``) gets their results from the folders in
    ``inputs`` (name -> folder), or else from ``out``'s siblings ``NAME-PRESET`` (run first when
    missing; PRESET is the config's ``inputs_preset``); it is never reused, always recomputed.

    On a terminal, progress goes to stderr: a bar with the total, the rate and the time left
    (see :mod:`actlab.progress`), and a line when a finished run is reused.
    """
    from actlab import progress
    from actlab.store import RunStore, RunStoreError, same_config

    label = label or f"{spec.name} ({preset})"
    read = _read_inputs(spec, cfg, out, label, inputs or {}) if spec.needs else None
    store = RunStore(out.resolve())
    _check_activation_files(store)
    try:
        if read is None and store.is_done() and same_config(store.read_config().get("config"), cfg):
            _say(f"{label}: reused the finished run in {store.path}")
            if stale := store.made_by_other_code():
                # the run's numbers and report come from that code, not this one
                print(
                    f"{label}: note: {store.path} was made by {stale}; delete the folder to "
                    "recompute it with this code",
                    file=sys.stderr,
                )
            return store.path
        backend = _start_backend()  # before the folder: a Ray that cannot start leaves none
        store.begin(spec.name, preset, cfg, backend)
    except RunStoreError as err:
        raise UsageError(str(err)) from None
    if _ACTIVATION_FILES:
        _write_activation_record(store)
    with progress.reporting(_reporter(label)):
        chunks = _chunk_runner(store)
        results = spec.run(cfg, chunks) if read is None else spec.run(cfg, chunks, inputs=read)
        progress.note("figures and report")
        store.save_results(results)
        _write_report(spec, store, results)
    store.finish()
    return store.path


def _read_inputs(spec, cfg, out: Path, label: str, folders: dict) -> dict:
    """The results of the runs ``spec`` needs (see :func:`_execute`), by experiment name."""
    from actlab.experiments import get_experiment
    from actlab.store import RunStore, RunStoreError

    preset = cfg.inputs_preset
    read = {}
    for name in spec.needs:
        folder = folders.get(name)
        if folder is None:
            need = get_experiment(name)
            base = _resolve_config(need, preset, [])
            folder = _execute(
                need,
                preset,
                base,
                out.parent / f"{name}-{preset}{_files_tag()}",
                f"{name} ({preset})",
            )
        try:
            read[name] = RunStore(folder).load_results()
        except RunStoreError as err:
            raise UsageError(f"{label} reads {folder}: {err}") from None
    return read


def _reporter(label: str):
    """A progress bar on a terminal, nothing otherwise (logs and CI stay clean)."""
    from actlab import progress

    if sys.stderr.isatty():
        return progress.TerminalReporter(label, sys.stderr)
    return progress.Reporter(label)


def _say(text: str) -> None:
    """A status line on a terminal only."""
    if sys.stderr.isatty():
        print(text, file=sys.stderr)


def _as_dict(cfg) -> dict:
    from actlab.store import config_to_dict

    return config_to_dict(cfg)


def _write_report(spec, store, results) -> None:
    for name, fig in spec.figures(results).items():
        store.save_figure(name, fig)
        if hasattr(fig, "clear"):
            fig.clear()  # figures are built outside pyplot: nothing else holds them
    store.save_report(spec.report(results))


# ---------------------------------------------------------------------- report, tutorial
def _cmd_report(run_dir: Path) -> int:
    from actlab.store import RunStore, RunStoreError

    store = RunStore(run_dir)
    try:
        record = store.read_config()
        if not _ACTIVATION_FILES:  # else the files given replace those the run recorded
            _load_recorded_activation_files(store)
        if str(record.get("experiment")).startswith("sweep:"):
            return _report_sweep(store, record)
        spec = _experiment(record.get("experiment"))
        results = store.load_results()
    except RunStoreError as err:
        raise UsageError(str(err)) from None
    _write_report(spec, store, results)
    print(store.path / "report.md")
    return 0


def _cmd_tutorial(args: argparse.Namespace) -> int:
    from actlab.experiments import list_experiments
    from actlab.report.tutorial import build_tutorial

    runs, done = [], {}
    names = list_experiments()
    for i, name in enumerate(names, 1):
        spec = _experiment(name)
        overrides = _with_device(spec.Config, [], args.device)
        cfg = _resolve_config(spec, args.preset, overrides)
        label = f"[{i}/{len(names)}] {name} ({args.preset})"
        # a run on another device is another config: it gets a folder of its own
        where = f"-{args.device.replace(':', '')}" if overrides else ""
        out = args.runs / f"{name}-{args.preset}{where}{_files_tag()}"
        done[name] = _execute(spec, args.preset, cfg, out, label, inputs=done)
        runs.append((spec, done[name]))
    _say("building the tutorial")
    try:
        index = build_tutorial(runs, args.out.resolve())
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot build the tutorial in {args.out}: {err}") from None
    print(index)
    return 0


# ---------------------------------------------------------------------- --backend
_RAY: Any = None
"""With ``--backend ray``: ``(RayOptions, ExitStack)``; the stack holds the Ray session once the
first run needs it (so a bad ``--set`` or a reused run starts no Ray) and closes it at the end of
the command (one session for every experiment of a tutorial)."""


@contextlib.contextmanager
def _backend(args: argparse.Namespace):
    """The command's backend; with the default one, the Ray options are refused."""
    global _RAY
    if getattr(args, "backend", "local") != "ray":
        given = [
            flag
            for flag, value in (
                ("--ray-address", getattr(args, "ray_address", None)),
                ("--ray-cpus", getattr(args, "ray_cpus", None)),
                ("--ray-cpus-per-task", getattr(args, "ray_cpus_per_task", 1.0) != 1.0 or None),
                ("--ray-gpus-per-task", getattr(args, "ray_gpus_per_task", 0.0) != 0.0 or None),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"{given[0]} needs --backend ray")
        yield
        return
    from actlab import backends

    try:
        ray = backends.import_ray()
        options = backends.RayOptions(
            address=args.ray_address,
            cpus=args.ray_cpus,
            cpus_per_task=args.ray_cpus_per_task,
            gpus_per_task=args.ray_gpus_per_task,
        )
    except backends.BackendError as err:
        raise UsageError(str(err)) from None
    except ValueError as err:
        raise UsageError(f"--backend ray: {err}") from None
    _check_ray_device(args, options)
    with contextlib.ExitStack() as stack:
        _RAY = (options, stack)
        try:
            yield
        except ray.exceptions.RayError as err:
            first = (str(err).strip().splitlines() or [""])[0]
            raise RunFailed(
                f"Ray: {type(err).__name__}: {first} (the finished chunks are saved: run the "
                "same command again to resume)"
            ) from None
        except backends.BackendError as err:
            raise RunFailed(str(err)) from None
        finally:
            _RAY = None


def _check_ray_device(args: argparse.Namespace, options) -> None:
    """With ``--backend ray``, a CUDA device needs GPUs reserved per task, named ``cuda``: Ray
    gives each task its GPUs as ``cuda:0``, ``cuda:1``... (``CUDA_VISIBLE_DEVICES``), and a task
    that reserves none still sees every GPU, so its work would pile onto ``cuda:0`` unreserved.
    GPUs per task without a CUDA device would reserve GPUs nothing uses."""
    sets = [
        value.strip()
        for key, _, value in (item.partition("=") for item in getattr(args, "overrides", []))
        if key.strip() == "device"
    ]
    device = getattr(args, "device", None) or (sets[-1] if sets else None)
    cuda = device is not None and device.split(":")[0] == "cuda"
    if cuda and device != "cuda":
        raise UsageError(
            f"--backend ray: write the device as cuda, not {device}: each task sees only the "
            "GPUs Ray reserves for it"
        )
    if cuda and options.gpus_per_task <= 0:
        raise UsageError("--backend ray with --device cuda needs --ray-gpus-per-task > 0")
    if not cuda and options.gpus_per_task > 0:
        raise UsageError("--ray-gpus-per-task needs --device cuda")


def _start_backend() -> dict[str, Any] | None:
    """With ``--backend ray``: Ray started (or connected) and checked to hold one task, and the
    backend's record for ``env.json``; ``None`` for the local backend. Called after the reuse
    check (a reused run starts no Ray) and before the run folder is made."""
    if _RAY is None:
        return None
    from actlab import backends

    options, stack = _RAY
    try:
        if not backends.import_ray().is_initialized():
            stack.enter_context(backends.ray_session(options))
        backends.check_fits(options)
    except backends.BackendError as err:
        raise UsageError(str(err)) from None
    return {
        "backend": "ray",
        "ray_address": options.address or "local",
        "ray_task_threads": options.threads,
        "ray_cpus_per_task": options.cpus_per_task,
        "ray_gpus_per_task": options.gpus_per_task,
    }


def _chunk_runner(store):
    """The run folder's chunk runner, as Ray tasks with ``--backend ray`` (after
    :func:`_start_backend`)."""
    chunks = store.chunk_runner()
    if _RAY is None:
        return chunks
    from actlab import backends

    options, _ = _RAY
    return backends.RayChunks(chunks, options, [f["path"] for f in _ACTIVATION_FILES])


# ---------------------------------------------------------------------- --activations-from
_ACTIVATION_FILES: tuple[dict[str, Any], ...] = ()
"""The files this command loaded: ``{"path": absolute, "sha256": ..., "activations": [...]}``."""

_RECORD = "activation_files.json"  # in a run folder made with --activations-from


def _load_activation_files(paths: list[Path]) -> tuple[dict[str, Any], ...]:
    """Load and check each file (in order, each once); any problem is one line, exit 2."""
    from actlab.activations import load_activations_file

    loaded: dict[str, dict[str, Any]] = {}
    for path in paths:
        where = path.expanduser().resolve()
        try:
            digest = hashlib.sha256(where.read_bytes()).hexdigest()
        except OSError:
            digest = ""  # the loader says what is wrong with it
        try:
            names = load_activations_file(path)
        except ValueError as err:
            raise UsageError(str(err)) from None
        loaded[str(where)] = {"path": str(where), "sha256": digest, "activations": names}
    return tuple(loaded.values())


def _read_activation_record(store) -> list[dict[str, Any]]:
    path = store.path / _RECORD
    if not path.exists():
        return []
    try:
        record = json.loads(path.read_text())
        return [{"path": str(f["path"]), "sha256": str(f["sha256"])} for f in record["files"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{path} cannot be read: {err}") from None


def _write_activation_record(store) -> None:
    from actlab.store import atomic_write_bytes

    text = json.dumps({"files": list(_ACTIVATION_FILES)}, indent=2)
    atomic_write_bytes(store.path / _RECORD, (text + "\n").encode())


def _check_activation_files(store) -> None:
    """A folder that holds a run (finished or not) is reused or resumed only with the same
    activation files, byte for byte: other files may define other activations under the same
    names, and the gallery draws every registered activation."""
    if not (store.path / "config.json").exists():
        return
    then = {(f["path"], f["sha256"]) for f in _read_activation_record(store)}
    now = {(f["path"], f["sha256"]) for f in _ACTIVATION_FILES}
    if then == now:
        return

    def named(files: set[tuple[str, str]]) -> str:
        if not files:
            return "no --activations-from file"
        return ", ".join(f"{p} (sha256 {h[:12]})" for p, h in sorted(files))

    raise UsageError(
        f"{store.path} holds a run made with {named(then)}, and this command loads "
        f"{named(now)}; choose another output folder (--out; --runs for the tutorial), or delete "
        "that one"
    )


def _load_recorded_activation_files(store) -> None:
    """Load the activation files a run was made with, as they were then (same sha256)."""
    from actlab.activations import load_activations_file

    for entry in _read_activation_record(store):
        path = Path(entry["path"])
        hint = "restore it, or pass --activations-from FILE to use another file"
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as err:
            raise UsageError(
                f"{store.path} was made with activations from {path}, which cannot be read "
                f"({err.strerror}); {hint}"
            ) from None
        if digest != entry["sha256"]:
            raise UsageError(
                f"{store.path} was made with activations from {path}, which has changed since "
                f"(sha256 {entry['sha256'][:12]} then, {digest[:12]} now); {hint}"
            )
        try:
            load_activations_file(path)
        except ValueError as err:
            raise UsageError(str(err)) from None


# ---------------------------------------------------------------------- config fields
def _fields_help(spec) -> str:
    from actlab.experiments.base import field_docs

    docs = field_docs(spec.Config)
    default = spec.presets["default"]
    lines = [
        f"actlab run {spec.name} [--preset {'|'.join(spec.presets)}] [--out DIR] "
        "[--set KEY=VALUE ...]",
        "",
        spec.title,
        "",
        "fields (value in the default preset):",
    ]
    for f in dataclasses.fields(spec.Config):
        lines.append(f"  {f.name} = {json.dumps(_as_dict(default)[f.name])}")
        if docs.get(f.name):
            lines.append(f"      {docs[f.name]}")
    return "\n".join(lines)


def parse_overrides(config_cls: type, items: list[str]) -> dict[str, Any]:
    """``["epochs=10", "activations=tanh,relu"]`` -> typed values for ``config_cls``'s fields.

    Raises:
        UsageError: for a malformed item, an unknown field (with the closest name) or a value
            that does not parse as the field's type.
    """
    hints = typing.get_type_hints(config_cls)
    names = [f.name for f in dataclasses.fields(config_cls)]
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"unknown field {key!r}.{hint} Fields: {', '.join(names)}")
        try:
            out[key] = _parse_value(hints[key], text.strip())
        except ValueError as err:
            raise UsageError(f"field {key}: {err}") from None
    return out


def _parse_value(tp: Any, text: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() == "none" and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse_value(arg, text)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError("; ".join(errors))
    if origin in (tuple, list):
        inner = args[0] if args else str
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return tuple(_parse_value(inner, p) for p in parts)
    if tp is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if tp is str:
        return text
    raise ValueError(f"cannot set a field of type {tp} from the command line")


# ---------------------------------------------------------------------- sweep
_SWEEP_USAGE = """\
actlab sweep EXPERIMENT [--preset P] [--grid KEY=V1,V2 ...] [--random N KEY=LO:HI ...]
             [--seeds K] [--set KEY=VALUE ...] [--out DIR] [--dry-run] [--max-members M]

Train every member of grid x random x seeds, members that share a shape in one ensemble pass;
write a run folder (default runs/sweep-EXPERIMENT-HASH: config.json with the plan, one chunk per
pass, members.parquet, table.csv and table.parquet with the mean and 95% interval over seeds of
each metric per setting, figures/summary.png) and print the table. Run the same command again
(its --grid and --random arguments in any order) to resume an interrupted sweep: finished passes
are not recomputed.

  --preset P          preset of the experiment giving every field not swept or set (default)
  --grid KEY=V1,V2    values of one field (repeatable); settings are all combinations
  --random N KEY=LO:HI ...
                      N random points, each KEY drawn from [LO, HI]: log-uniform when LO > 0
                      and HI/LO >= 100, else uniform; integer fields stay integers; the same
                      command draws the same points
  --seeds K           seeds 0..K-1 per setting (default: the preset's)
  --set KEY=VALUE     fix a field (repeatable)
  --device DEV        cpu, cuda or cuda:N: --set device=DEV where the experiment has the field
  --out DIR           run folder
  --dry-run           print members, passes and a time estimate from a short calibration step;
                      write nothing
  --max-members M     most members in one ensemble pass (default 1000)"""


def _add_sweep_parser(sub, **kwargs: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="sweep an experiment's fields over a grid, random draws and seeds",
        add_help=False,
        **kwargs,
    )
    p.add_argument("experiment", nargs="?")
    p.add_argument("--preset", default="default")
    p.add_argument("--grid", nargs="+", action="append", default=[], metavar="KEY=V1,V2")
    p.add_argument("--random", nargs="+", action="append", default=[], metavar="N KEY=LO:HI")
    p.add_argument("--seeds", type=int)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--max-members", type=int, default=1000)
    p.add_argument("-h", "--help", action="store_true")


def _cmd_sweep(args: argparse.Namespace) -> int:
    from actlab import progress, sweep
    from actlab.store import RunStore, RunStoreError

    if args.help and not args.experiment:
        print(_SWEEP_USAGE)
        return 0
    if not args.experiment:
        raise UsageError(f"sweep needs an experiment name: {', '.join(_sweepable())}")
    spec = _experiment(args.experiment)
    try:
        adapter = sweep.adapter_of(spec)
    except sweep.SweepError as err:
        raise UsageError(str(err)) from None
    if args.help:
        print(_SWEEP_USAGE + "\n\n" + _sweep_fields_help(spec, adapter))
        return 0
    overrides = parse_overrides(
        adapter.Point, _with_device(adapter.Point, args.overrides, args.device)
    )
    grid = _parse_grid(adapter.Point, [item for group in args.grid for item in group])
    n_random, ranges = _parse_random(adapter.Point, args.random)
    try:
        plan = sweep.make_plan(
            spec, args.preset, overrides, grid, ranges, n_random, args.seeds, args.max_members
        )
    except sweep.SweepError as err:
        raise UsageError(str(err)) from None
    if args.dry_run:
        print(sweep.describe(plan, sweep.estimate(plan)))
        return 0

    record = _as_dict(plan)
    files = [f"{f['path']} {f['sha256']}" for f in _ACTIVATION_FILES]
    same = [sweep.canonical(record), files]  # the order of --grid/--random does not count
    digest = hashlib.sha1(json.dumps(same, sort_keys=True).encode()).hexdigest()[:8]
    store = RunStore((args.out or Path("runs") / f"sweep-{spec.name}-{digest}").resolve())
    _check_activation_files(store)
    name = f"sweep:{spec.name}"
    try:
        stored = store.read_config() if (store.path / "config.json").is_file() else {}
        if (
            stored.get("experiment") == name
            and stored.get("config") != record
            and sweep.canonical(stored["config"]) == sweep.canonical(record)
        ):
            # the same sweep with its arguments in another order: the stored plan's order
            # (member ids, passes) is the one its chunks were saved in
            plan = sweep.Plan(**stored["config"])
            record = _as_dict(plan)
        old = stored if store.is_done() else {}
        if old.get("experiment") == name and old.get("config") == record:
            _say(f"sweep {spec.name}: reused the finished sweep in {store.path}")
            tab = _read_table(store.path / "table.parquet")
            print(sweep.format_table(plan, tab))
            print(store.path)
            return 0
        backend = _start_backend()  # before the folder: a Ray that cannot start leaves none
        store.begin(name, args.preset, plan, backend)
    except RunStoreError as err:
        raise UsageError(str(err)) from None
    if _ACTIVATION_FILES:
        _write_activation_record(store)
    chunks = store.chunk_runner()
    done = sum(chunks.path(sweep.pass_key(i)).is_file() for i in range(len(plan.passes)))
    if done:
        print(
            f"sweep {spec.name}: restored {done}/{len(plan.passes)} passes from {store.path}",
            file=sys.stderr,
        )
    with progress.reporting(_reporter(f"sweep {spec.name} ({len(plan.passes)} passes)")):
        results = sweep.run(plan, _chunk_runner(store))
        progress.note("table and figure")
        tab = sweep.table(plan, results)
        fig = sweep.figure(plan, tab)
        sweep.save(store, results, tab, fig)
        fig.clear()
    store.finish()
    print(sweep.format_table(plan, tab))
    print(store.path)
    return 0


def _read_table(path: Path):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise UsageError(f"{path.parent} has no finished sweep ({path.name} missing)") from None


def _report_sweep(store, record: dict) -> int:
    """``actlab report`` on a sweep folder: the figure rebuilt and the table printed."""
    from actlab import sweep

    plan = sweep.Plan(**record["config"])
    tab = _read_table(store.path / "table.parquet")
    fig = sweep.figure(plan, tab)
    path = store.save_figure("summary", fig)
    fig.clear()
    print(sweep.format_table(plan, tab))
    print(path)
    return 0


def _sweepable() -> list[str]:
    from actlab.experiments import get_experiment, list_experiments

    return [n for n in list_experiments() if get_experiment(n).sweep is not None]


def _sweep_fields_help(spec, adapter) -> str:
    from actlab.experiments.base import field_docs

    docs = field_docs(adapter.Point)
    base = _as_dict(adapter.base(spec.presets["default"]))
    lines = [
        f"fields of a {spec.name} sweep (value in the default preset; members of one pass may "
        f"differ in {', '.join(adapter.member_fields)}):"
    ]
    for name in adapter.fields:
        lines.append(f"  {name} = {json.dumps(base[name])}")
        if docs.get(name):
            lines.append(f"      {docs[name]}")
    lines.append(f"metrics: {', '.join(adapter.metrics)}, diverged")
    return "\n".join(lines)


def _split_values(text: str) -> list[str]:
    """``"a,b(1,2),c"`` -> ``["a", "b(1,2)", "c"]``: commas inside brackets stay (activation
    names such as ``leaky_relu(slope=0.2)`` may hold them)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _parse_grid(point_cls: type, items: list[str]) -> dict[str, list]:
    """``["lr=1e-3,1e-2", "activation=tanh,relu"]`` -> typed values per field."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--grid expects KEY=V1,V2,..., got {item!r}")
        if key in grid:
            raise UsageError(f"--grid {key} is given twice")
        values = _split_values(text)
        if not values:
            raise UsageError(f"--grid {key}= needs at least one value")
        grid[key] = [parse_overrides(point_cls, [f"{key}={v}"])[key] for v in values]
    return grid


def _parse_random(point_cls: type, groups: list[list[str]]) -> tuple[int, dict[str, tuple]]:
    """``[["20", "lr=1e-4:1e-1", "width=16:128"]]`` -> ``(20, {"lr": (1e-4, 0.1), ...})``."""
    if not groups:
        return 0, {}
    if len(groups) > 1:
        raise UsageError("--random is given twice; give one --random N KEY=LO:HI ...")
    first, *items = groups[0]
    try:
        n = int(first)
    except ValueError:
        raise UsageError(f"--random N KEY=LO:HI ...: N must be an integer, got {first!r}") from None
    if not items:
        raise UsageError("--random N needs at least one KEY=LO:HI")
    ranges: dict[str, tuple] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        bounds = text.split(":")
        if not sep or not key or len(bounds) != 2:
            raise UsageError(f"--random expects KEY=LO:HI, got {item!r}")
        if key in ranges:
            raise UsageError(f"--random {key} is given twice")
        lo, hi = (parse_overrides(point_cls, [f"{key}={b}"])[key] for b in bounds)
        ranges[key] = (lo, hi)
    return n, ranges


if __name__ == "__main__":
    sys.exit(main())
