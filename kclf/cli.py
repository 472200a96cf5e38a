"""The ``kclf`` command: list, run, info, compare and bench.

Errors are one line on stderr and a non-zero exit, never a traceback:
1 for a failure, 2 for a usage error (unknown experiment, backend or option; an --out,
--data or --backend that cannot work, checked before anything runs), 3 for a run that
diverged, 130 for Ctrl-C. kclf compare: 1 also when backends differ.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from kclf import __version__
from kclf.editions import EDITIONS, STARTS, STROKE_CSV_ENV, start_names
from kclf.errors import KclfError, UsageError

# Subcommands implemented in their own modules: name -> (module, help).
_PLUGINS = {
    "compare": ("kclf.compare", "run experiments under several backends and diff them step by step"),
    "bench": ("kclf.bench", "measure what TrainingTrace costs on each backend"),
}


def _cmd_list(args) -> int:
    from kclf import registry

    experiments = registry.discover()
    if args.names:
        print("\n".join(experiments))
        return 0
    width = max(len(n) for n in experiments) if experiments else 0
    for info in experiments.values():
        print(f"{info.name:<{width}}  {info.description}")
    return 0


def _cmd_info(args) -> int:
    from kclf.backend import BACKENDS, pip_extra, versions

    found = versions()
    print(f"kclf        {__version__}")
    print(f"python      {found['python']}")
    print(f"keras       {found['keras']}")
    for name in BACKENDS:
        extra = "" if found[name] != "not installed" else f"  (pip install '{pip_extra(name)}')"
        print(f"{name:<11} {found[name]}{extra}")
    return 0


def _settings(info, args) -> tuple[dict, str | None]:
    """The run's settings from the command line (kclf.editions): start, edition and data;
    and the backend the run defaults to: the edition's for the demos (the experiments with
    --start modes, which reprint what the edition's backend printed); None for the others,
    editions or not (the optimisation slides' functions belong to no backend).
    Read here, once: the experiment gets them as fields of its Run."""
    from kclf import editions, registry

    if args.start and not info.starts:
        raise UsageError(f"--start {args.start}: experiment {info.name!r} takes no --start "
                         "(it has one start only)")
    if args.edition and not info.editions:
        raise UsageError(f"--edition {args.edition}: experiment {info.name!r} is the same in "
                         "every edition; --edition is for "
                         + ", ".join(n for n, i in registry.discover().items() if i.editions))
    start, edition = editions.resolve(args.start, args.edition)
    if info.starts and start.name not in info.starts:
        raise UsageError(f"--start {start.name}: experiment {info.name!r} takes one of: "
                         f"{', '.join(info.starts)}")
    if info.editions and edition.name not in info.editions:
        raise UsageError(f"--edition {edition.name}: experiment {info.name!r} has "
                         f"{', '.join(info.editions)}")
    data = args.data
    if data is None and info.reads_data:
        data = os.environ.get(STROKE_CSV_ENV) or None  # read once, here
    settings = {"start": start.name if info.starts else editions.RUN_DEFAULT_START,
                "edition": edition.name, "data": data}
    return settings, (edition.backend if info.editions and info.starts else None)


def _cmd_run(args) -> int:
    from kclf import devices, registry
    from kclf.backend import select_backend, validate_name

    info = registry.get(args.name)  # unknown names fail before any backend import
    settings, edition_backend = _settings(info, args)
    if args.backend is not None:
        validate_name(args.backend)  # a bad name is a usage error before the data is read
    registry.check_data(args.data, [info.name])  # a bad file fails before anything runs
    note = None
    if args.backend is None and edition_backend is not None:
        chosen = os.environ.get("KERAS_BACKEND")
        if chosen and chosen != edition_backend:
            note = (f"the {settings['edition']} edition ran on {edition_backend}; KERAS_BACKEND="
                    f"{chosen} is not used for it (give --backend {chosen} to run it there)")
    backend = select_backend(args.backend or edition_backend)  # keras is not imported yet
    devices.configure()  # KCLF_DEVICES=N (kclf compare --devices N): before the experiment's first op
    out = Path(args.out) if args.out else Path("results") / info.name / backend
    from kclf import runner

    return runner.run_experiment(info, backend, out, settings, json_mode=args.json, note=note)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, exit 2
        self.exit(2, f"kclf: error: {message} (see kclf --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kclf",
        description="Train the lecture's classifiers with Keras 3 and check them step by step "
        "on JAX, TensorFlow and PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"kclf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("list", help="list the experiments with a one-line description")
    p.add_argument("--names", action="store_true", help="names only, one per line")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run one experiment on one backend")
    p.add_argument("name", help="experiment name (see kclf list)")
    p.add_argument("--backend", "-b", help="jax, tensorflow or torch (default: the edition's "
                   "backend for the demos, else $KERAS_BACKEND, else tensorflow)")
    p.add_argument("--out", help="output folder (default: results/NAME/BACKEND/)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--data", help="data file for experiments that read one (stroke: the Kaggle CSV)")
    p.add_argument("--edition", choices=tuple(EDITIONS),
                   help="which edition of the lecture (demos and the optimisation slides that "
                   "changed): 2026 = the PyTorch edition the course teaches now (default; the "
                   "demos then run on torch unless --backend says otherwise), 2025 = the "
                   "TensorFlow edition")
    p.add_argument("--start", choices=start_names(), metavar="START",
                   help="demos (iris, stroke, lecture): " + "; ".join(
                       f"{s.name} = {s.help}" for s in STARTS.values())
                   + " (default lecture; tensorflow = tensorflow-2025)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("info", help="Python, Keras and backend versions")
    p.set_defaults(func=_cmd_info)

    for name, (module_name, help_text) in _PLUGINS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=_plugin(module_name), plugin_parser=p)
        try:
            importlib.import_module(module_name).add_arguments(p)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
    return parser


def _plugin(module_name: str):
    def call(args) -> int:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            raise KclfError(f"{module_name} is not available in this version of kclf") from None
        return module.main(args)

    return call


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (2, its line printed), --help or --version (0)
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from kclf.trace.interrupt import held

    try:
        with held():  # Ctrl-C is never dropped inside a garbage-collection callback
            return int(args.func(args) or 0)
    except KclfError as exc:
        print(f"kclf: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kclf: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for the user; the type says what broke
        print(f"kclf: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
