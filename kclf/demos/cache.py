"""The captures behind ``--start tensorflow``: shipped, cached, or made by a TensorFlow process.

A capture holds, per fit of a demo, the TensorFlow lecture run's initial weights and each
epoch's row order (kclf.demos.start.Capture), plus that run's printed values. kclf ships
the captures for the pinned versions (``fixtures/``: iris, and stroke on the Kaggle file,
about 250 KB; ``make fixtures`` remakes them); any other data file or version is captured
once by ``python -m kclf.demos.cache DEMO OUT [DATA]`` and cached in ``$KCLF_CACHE``
(default ``~/.cache/kclf``) under a key of the data file and the keras/TensorFlow versions.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from kclf.demos.start import FitStart
from kclf.errors import KclfError

CACHE_ENV = "KCLF_CACHE"
FORMAT = 1  # bump when what a capture holds changes
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kclf") / "lecture-start"


def cache_path(demo: str, data: Path | None) -> Path:
    from kclf.backend import package_version

    key = hashlib.sha256()
    key.update(f"{demo} {FORMAT} keras {package_version('keras')} "
               f"tensorflow {package_version('tensorflow')}".encode())
    if data is not None:
        key.update(Path(data).read_bytes())
    return cache_dir() / f"{demo}-{key.hexdigest()[:16]}.npz"


def save(path: Path, fits: list[FitStart], results: dict) -> None:
    from kclf.runner import atomic_write, to_jsonable

    arrays = {}
    meta = {"fits": [], "results": to_jsonable(results)}
    for i, fit in enumerate(fits):
        arrays[f"order{i}"] = fit.orders
        for j, w in enumerate(fit.weights):
            arrays[f"w{i}_{j}"] = w
        meta["fits"].append({"label": fit.label, "weights": len(fit.weights),
                             "batch_size": fit.batch_size})
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write(path, buf.getvalue())


def load(path: Path) -> tuple[list[FitStart], dict]:
    with np.load(path) as npz:
        meta = json.loads(str(npz["meta"]))
        fits = [FitStart(f["label"], [npz[f"w{i}_{j}"] for j in range(f["weights"])],
                         npz[f"order{i}"], f["batch_size"])
                for i, f in enumerate(meta["fits"])]
    return fits, meta["results"]


def ensure(demo: str, data: Path | None, *, quiet: bool = False) -> Path:
    """The capture for ``demo`` (and data file): shipped with kclf for the pinned versions
    (iris; stroke on the Kaggle file), else cached, else made by a TensorFlow process."""
    path = cache_path(demo, data)
    shipped = FIXTURES / path.name
    if shipped.exists():
        return shipped
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:  # parallel runs wait for one capture
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        return _capture(demo, data, path, quiet)


def _capture(demo: str, data: Path | None, path: Path, quiet: bool) -> Path:
    from kclf.backend import is_installed, pip_extra

    if not is_installed("tensorflow"):
        raise KclfError(f"--start tensorflow needs TensorFlow to capture the lecture run's start "
                        f"(no cached capture at {path}); install it with "
                        f"pip install '{pip_extra('tensorflow')}'")
    if not quiet:
        print(f"capturing the TensorFlow lecture run's initial weights and batch order "
              f"({demo}, one TensorFlow process, about a minute) → {path}", file=sys.stderr)
    command = [sys.executable, "-m", "kclf.demos.cache", demo, str(path)]
    if data is not None:
        command.append(str(data))
    env = dict(os.environ, KERAS_BACKEND="tensorflow", KCLF_START="lecture")
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not path.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise KclfError(f"capturing the TensorFlow start for {demo} failed: {last}")
    return path


def _capture_main(argv: list[str]) -> int:
    """python -m kclf.demos.cache DEMO OUT.npz [DATA]: run the demo's cells on TensorFlow.
    python -m kclf.demos.cache --ship STROKE_CSV: remake the captures shipped with kclf."""
    from kclf.backend import select_backend

    if argv and argv[0] == "--ship":
        if len(argv) != 2 or not Path(argv[1]).is_file():
            print("usage: python -m kclf.demos.cache --ship healthcare-dataset-stroke-data.csv",
                  file=sys.stderr)
            return 2
        for old in FIXTURES.glob("*.npz"):
            old.unlink()
        for demo, data in (("iris", None), ("stroke", Path(argv[1]))):
            _capture(demo, data, FIXTURES / cache_path(demo, data).name, quiet=False)
        return 0
    demo, out = argv[0], Path(argv[1])
    data = Path(argv[2]) if len(argv) > 2 else None
    select_backend("tensorflow")
    from kclf.demos import lecture_cells
    from kclf.demos.start import Capture
    from kclf.runner import Run

    capture = Capture()
    ctx = Run(demo, "tensorflow", out.parent, json_mode=True)
    ctx.print = lambda *a, **k: None
    ctx.figure = lambda fig, name: __import__("matplotlib.pyplot").pyplot.close(fig)
    results = lecture_cells(demo)(ctx, capture, data)
    save(out, capture.fits, results)
    return 0


if __name__ == "__main__":
    sys.exit(_capture_main(sys.argv[1:]))
