"""The captures behind the replay starts: shipped, cached, or made by one process of the
edition's backend.

A capture holds, per fit of a demo, the edition's run's initial weights and each epoch's row
order (kclf.demos.start: ``Capture`` on TensorFlow for 2025, ``TorchCapture`` on torch for
2026, whose orders are kept as one torch seed per epoch), plus that run's printed values.
kclf ships the captures for the pinned versions (``fixtures/``: iris, and stroke on the
Kaggle file and on the synthetic stand-in; ``make fixtures`` remakes them); any other data file or version is captured
once by ``python -m kclf.demos.cache DEMO OUT [DATA] --edition E`` and cached in
``$KCLF_CACHE`` (default ``~/.cache/kclf``) under a key of the data file and the versions.

The fixtures also hold torch's generator state at the moment the 2026 lecture's iris demo
began (after the stroke demo's 706 epochs): ``kclf run iris`` on torch restores it
(:func:`restore_iris_generators`), so that iris alone prints what the lecture printed.

A capture is read without unpickling (``allow_pickle=False``); one that cannot be read is
named, with what to do, and a cached one is captured again.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from kclf.demos.start import FitStart
from kclf.errors import KclfError

CACHE_ENV = "KCLF_CACHE"
FORMAT = {"2025": 1, "2026": 1}  # per edition: bump when what its captures hold changes
FIXTURES = Path(__file__).resolve().parent / "fixtures"
IRIS_GENERATORS = FIXTURES / "iris-2026-generators.npz"
BACKEND_PACKAGE = {"2025": "tensorflow", "2026": "torch"}
REMAKE = "make fixtures (KCLF_STROKE_CSV=the Kaggle file)"


class DamagedCapture(KclfError):
    """A capture file that cannot be read as one."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kclf") / "lecture-start"


def cache_path(demo: str, data: Path | None, edition: str = "2025") -> Path:
    from kclf.backend import package_version

    package = BACKEND_PACKAGE[edition]
    key = hashlib.sha256()
    # 2025's key is the one its captures had before the 2026 edition (the shipped files).
    tag = "" if edition == "2025" else f" {edition}"
    key.update(f"{demo}{tag} {FORMAT[edition]} keras {package_version('keras')} "
               f"{package} {package_version(package)}".encode())
    if data is not None:
        key.update(Path(data).read_bytes())
    name = demo if edition == "2025" else f"{demo}-{edition}"
    return cache_dir() / f"{name}-{key.hexdigest()[:16]}.npz"


def save(path: Path, fits: list[FitStart], results: dict, seeds: dict | None = None) -> None:
    """Write a capture; with ``seeds`` (torch), each fit's orders as one seed per epoch."""
    from kclf.fsio import atomic_write
    from kclf.jsonio import to_jsonable

    arrays = {}
    meta = {"fits": [], "results": to_jsonable(results)}
    for i, fit in enumerate(fits):
        if seeds is not None:
            arrays[f"seeds{i}"] = seeds[fit.label]
        else:
            arrays[f"order{i}"] = fit.orders
        for j, w in enumerate(fit.weights):
            arrays[f"w{i}_{j}"] = w
        meta["fits"].append({"label": fit.label, "weights": len(fit.weights),
                             "batch_size": fit.batch_size, "rows": int(fit.orders.shape[1])})
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write(path, buf.getvalue())


def _read(path: Path) -> tuple[dict, dict]:
    """(meta, arrays) of a capture file; DamagedCapture naming it when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
        for i, fit in enumerate(meta["fits"]):
            for j in range(fit["weights"]):
                arrays[f"w{i}_{j}"]  # noqa: B018 (each weight must be there)
            if f"seeds{i}" not in arrays and f"order{i}" not in arrays:
                raise KeyError(f"order{i}")
        return meta, arrays
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        what = type(exc).__name__ if isinstance(exc, KeyError) else exc
        raise DamagedCapture(f"capture {path} is damaged ({what}); expected a kclf capture "
                             "(.npz of initial weights and batch orders)") from None


def load(path: Path) -> tuple[list[FitStart], dict]:
    meta, arrays = _read(path)
    fits = []
    for i, f in enumerate(meta["fits"]):
        if f"seeds{i}" in arrays:
            orders = _torch_orders(arrays[f"seeds{i}"], f["rows"])
        else:
            orders = arrays[f"order{i}"]
        fits.append(FitStart(f["label"], [arrays[f"w{i}_{j}"] for j in range(f["weights"])],
                             orders, f["batch_size"]))
    return fits, meta["results"]


def _torch_orders(seeds, rows: int) -> np.ndarray:
    from kclf.backend import is_installed, pip_extra

    if not is_installed("torch"):
        raise KclfError("--start torch-2026 needs PyTorch to turn the torch run's seeds into its "
                        f"batch orders (torch.randperm); install it with pip install "
                        f"'{pip_extra('torch')}'")
    from kclf.demos.start import torch_orders

    return torch_orders(seeds, rows)


def ensure(demo: str, data: Path | None, edition: str = "2025", *, quiet: bool = False) -> Path:
    """The capture for ``demo`` (and data file) of ``edition``'s run: shipped with kclf for the
    pinned versions (iris; stroke on the Kaggle file), else cached, else made by a process of
    the edition's backend. A damaged cached capture is made again."""
    path = cache_path(demo, data, edition)
    shipped = FIXTURES / path.name
    if shipped.exists():
        return shipped
    if path.exists() and _readable(path):
        return path
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "w")
    except OSError as exc:
        raise KclfError(f"{CACHE_ENV}: cannot write captures into {folder} ({exc.strerror}); "
                        f"expected a writable folder (set {CACHE_ENV} to one)") from None
    with lock:  # parallel runs wait for one capture
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() and _readable(path):
            return path
        return _capture(demo, data, path, edition, quiet)


def _readable(path: Path) -> bool:
    try:
        _read(path)
        return True
    except DamagedCapture as exc:
        print(f"kclf: {exc}; capturing it again", file=sys.stderr)
        return False


def _capture(demo: str, data: Path | None, path: Path, edition: str, quiet: bool) -> Path:
    from kclf.backend import is_installed, pip_extra

    backend = BACKEND_PACKAGE[edition]
    if not is_installed(backend):
        raise KclfError(f"--start {backend}-{edition} needs {backend} to capture the {edition} "
                        f"lecture run's start (no cached capture at {path}); install it with "
                        f"pip install '{pip_extra(backend)}'")
    if not quiet:
        print(f"capturing the {edition} lecture run's initial weights and batch order ({demo}, "
              f"one {backend} process, a minute or more) → {path}", file=sys.stderr)
    command = [sys.executable, "-m", "kclf.demos.cache", demo, str(path), "--edition", edition]
    if data is not None:
        command.append(str(data))
    env = dict(os.environ, KERAS_BACKEND=backend)
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not path.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise KclfError(f"capturing the {edition} start for {demo} failed: {last}")
    return path


# -- torch's generators where the 2026 lecture's iris demo began ---------------------------
def save_generators(path: Path) -> None:
    """Write torch's, NumPy's and Python's generator states (the 2026 lecture run, just before
    its iris demo)."""
    import random

    import torch

    from kclf.fsio import atomic_write

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, _ = random.getstate()
    buf = io.BytesIO()
    np.savez_compressed(buf, torch=torch.get_rng_state().numpy(), numpy_keys=keys,
                        numpy_rest=np.array([pos, has_gauss, gauss], dtype="float64"),
                        python=np.array([version, *internal], dtype="int64"))
    atomic_write(path, buf.getvalue())


def restore_iris_generators(path: Path = IRIS_GENERATORS) -> Path:
    """Put torch's, NumPy's and Python's generators where the 2026 lecture run had them when
    its iris demo began; returns the file. Remade by ``make fixtures``."""
    import random

    import torch

    try:
        with np.load(path, allow_pickle=False) as npz:
            state = torch.from_numpy(npz["torch"].astype("uint8"))
            keys, rest, python = npz["numpy_keys"], npz["numpy_rest"], npz["python"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise DamagedCapture(f"{path} is damaged or missing ({type(exc).__name__}); expected the "
                             f"2026 lecture's generator states (remake it with {REMAKE})") from None
    torch.set_rng_state(state)
    np.random.set_state(("MT19937", keys, int(rest[0]), int(rest[1]), float(rest[2])))
    random.setstate((int(python[0]), tuple(int(v) for v in python[1:]), None))
    return path


def _capture_main(argv: list[str]) -> int:
    """python -m kclf.demos.cache DEMO OUT.npz [DATA] [--edition E]: run the demo's cells on the
    edition's backend and save its start. python -m kclf.demos.cache --ship STROKE_CSV: remake
    every capture shipped with kclf (and the 2026 iris generator states)."""
    from kclf.backend import select_backend

    if argv and argv[0] == "--ship":
        if len(argv) != 2 or not Path(argv[1]).is_file():
            print("usage: python -m kclf.demos.cache --ship healthcare-dataset-stroke-data.csv",
                  file=sys.stderr)
            return 2
        csv = Path(argv[1])
        for old in FIXTURES.glob("*.npz"):
            old.unlink()
        command = [sys.executable, "-m", "kclf.demos.cache", "--generators", str(csv)]
        if subprocess.run(command, env=dict(os.environ, KERAS_BACKEND="torch")).returncode:
            return 1
        for edition in ("2025", "2026"):  # stroke on the Kaggle file and on the synthetic data
            for demo, data in (("iris", None), ("stroke", csv), ("stroke", None)):
                _capture(demo, data, FIXTURES / cache_path(demo, data, edition).name, edition,
                         quiet=False)
        return 0
    if argv and argv[0] == "--generators":
        return _generators_main(Path(argv[1]))
    edition = "2025"
    if "--edition" in argv:
        at = argv.index("--edition")
        edition = argv[at + 1]
        argv = argv[:at] + argv[at + 2:]
    demo, out = argv[0], Path(argv[1])
    data = Path(argv[2]) if len(argv) > 2 else None
    backend = select_backend(BACKEND_PACKAGE[edition])
    from kclf.demos import cells, start
    from kclf.runner import Run

    capture = start.Capture() if backend == "tensorflow" else start.TorchCapture()
    ctx = _quiet_run(Run(demo, backend, out.parent, json_mode=True, start="lecture",
                         edition=edition))
    with start.preamble(edition, backend):
        if demo == "iris" and edition == "2026":
            restore_iris_generators()
        results = cells(ctx, demo, capture, data)
    save(out, capture.fits, results, getattr(capture, "seeds", None))
    return 0


def _quiet_run(ctx):
    import tempfile

    ctx.print = lambda *a, **k: None
    ctx.figure = lambda fig, name: __import__("matplotlib.pyplot").pyplot.close(fig)
    ctx.out = Path(tempfile.mkdtemp(prefix="kclf-capture-"))  # the 2026 stroke CSV files
    return ctx


def _generators_main(csv: Path) -> int:
    """The 2026 lecture run on torch up to its iris demo: the stroke cells on the Kaggle file,
    then the generator states, as kclf run iris restores them."""
    from kclf.backend import select_backend

    select_backend("torch")
    from kclf.demos import cells, start
    from kclf.runner import Run

    ctx = _quiet_run(Run("stroke", "torch", Path("."), json_mode=True, edition="2026"))
    with start.preamble("2026", "torch"):
        cells(ctx, "stroke", start.Lecture(), csv)
        save_generators(IRIS_GENERATORS)
    return 0


if __name__ == "__main__":
    sys.exit(_capture_main(sys.argv[1:]))
