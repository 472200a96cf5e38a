"""The child that runs a user's script for kclf compare (kclf.compare.runs).

    python -m kclf.compare.script SCRIPT

It runs SCRIPT as ``python SCRIPT`` would (as ``__main__``, its folder first on sys.path),
after what every kclf run does before its first op: torch gets one thread
(kclf.backend.threads_for; KERAS_BACKEND is the compare's) and ``--devices N`` its devices
(kclf.devices.configure: TensorFlow's CPU split into N, which no import of kclf does).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    from kclf import devices
    from kclf.backend import threads_for
    from kclf.errors import KclfError

    script = Path(argv[0])
    threads_for(os.environ.get("KERAS_BACKEND", ""))
    try:
        devices.configure()
    except KclfError as exc:
        sys.exit(f"kclf: error: {exc}")  # one line on stderr, exit 1: the run failed
    sys.argv = [str(script), *argv[1:]]
    sys.path[0] = str(script.resolve().parent)
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
