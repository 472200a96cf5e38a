"""The child that runs several experiments of one backend in one process (kclf.compare.schedule).

    python -m kclf.compare.batch BACKEND --edition=E NAME=FOLDER [NAME=FOLDER ...]

Each experiment runs exactly as ``kclf run NAME --backend BACKEND --out FOLDER [--edition E]``
does (the same code: kclf.runner.run_experiment; the batch runs only experiments without
--start modes or data files), one after another, its stdout and stderr in FOLDER's own
BACKEND.stdout.log and BACKEND.stderr.log; when it ends, BACKEND.exit.json beside FOLDER
holds its exit code. Ctrl-C stops the batch.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from kclf import devices
from kclf.compare.runs import EXIT, beside
from kclf.fsio import atomic_write


@contextmanager
def _output_to(folder: Path):
    """Point file descriptors 1 and 2 (Python's and C libraries' output) at the run's logs."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(beside(folder, "stdout.log"), "wb") as out, open(beside(folder, "stderr.log"), "wb") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def main(argv: list[str]) -> int:
    from kclf import registry, runner
    from kclf.backend import select_backend
    from kclf.errors import KclfError

    backend, edition, *items = argv
    settings = {"start": "lecture", "edition": edition.removeprefix("--edition="), "data": None}
    select_backend(backend)
    if os.environ.get(devices.ENV, "1") != "1":
        devices.configure()  # --devices N: before any experiment runs a backend op
    for item in items:
        name, _, folder = item.partition("=")
        folder = Path(folder)
        with _output_to(folder):
            try:  # as kclf.cli.main ends a run: one line on stderr and its exit code
                code = runner.run_experiment(registry.get(name), backend, folder, settings)
            except KclfError as exc:
                print(f"kclf: error: {exc}", file=sys.stderr)
                code = exc.exit_code
            except KeyboardInterrupt:
                print("kclf: interrupted", file=sys.stderr)
                code = 130
            except Exception as exc:  # never a traceback for the user; the type says what broke
                print(f"kclf: error: {type(exc).__name__}: {exc}", file=sys.stderr)
                code = 1
        atomic_write(beside(folder, EXIT), json.dumps({"returncode": code}))
        if code == 130:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
