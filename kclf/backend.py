"""Backend selection: choose JAX, TensorFlow or PyTorch before Keras is imported.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, and cannot switch
afterwards. Everything in kclf that needs Keras calls :func:`select_backend` first,
so a wrong or missing backend fails here with one clear line instead of a silent
run on another backend.

    >>> from kclf.backend import select_backend
    >>> select_backend("jax")   # doctest: +SKIP
    'jax'
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import sys

from kclf.errors import KclfError

BACKENDS = ("jax", "tensorflow", "torch")

# The import name kclf checks, the distribution whose version it reports,
# and the pip extra that installs it.
_PACKAGES = {
    "jax": ("jax", ("jax",), "kclf[jax]"),
    "tensorflow": ("tensorflow", ("tensorflow-cpu", "tensorflow"), "kclf[tensorflow]"),
    "torch": ("torch", ("torch",), "kclf[torch]"),
}


class BackendError(KclfError):
    """The requested backend is not installed, or not the one Keras runs on."""


class UnknownBackend(BackendError):
    """A name that is not a backend: a usage error (exit 2), like any other bad option."""

    exit_code = 2


def pip_extra(name: str) -> str:
    return _PACKAGES[name][2]


def validate_name(name: str) -> str:
    """Return the canonical backend name or raise naming the valid ones."""
    canonical = str(name).strip().lower()
    if canonical == "pytorch":
        canonical = "torch"
    if canonical not in BACKENDS:
        raise UnknownBackend(
            f"unknown backend {name!r}; expected one of: {', '.join(BACKENDS)}"
        )
    return canonical


def is_installed(name: str) -> bool:
    return importlib.util.find_spec(_PACKAGES[validate_name(name)][0]) is not None


def package_version(name: str) -> str | None:
    """Installed version of a backend's package (or of keras), None when absent."""
    dists = _PACKAGES[name][1] if name in _PACKAGES else (name,)
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def select_backend(name: str | None = None) -> str:
    """Make ``name`` (or $KERAS_BACKEND, default "tensorflow") the Keras backend.

    Must run before ``import keras``. An empty ``name`` is unknown, not the default.
    Raises BackendError when the name is unknown (UnknownBackend, exit 2),
    the backend's package is missing (naming the pip extra), or keras was already
    imported with a different backend.
    """
    requested = name if name is not None else (os.environ.get("KERAS_BACKEND") or "tensorflow")
    backend = validate_name(requested)
    if not is_installed(backend):
        raise BackendError(
            f"backend {backend!r} is not installed; install it with "
            f"pip install '{pip_extra(backend)}' (or make install for all three)"
        )
    if "keras" in sys.modules:
        import keras

        active = keras.backend.backend()
        if active != backend:
            raise BackendError(
                f"keras is already imported with backend {active!r}, cannot switch to "
                f"{backend!r}; start a new process with KERAS_BACKEND={backend}"
            )
        return backend
    os.environ["KERAS_BACKEND"] = backend
    # TensorFlow's C++ start-up chatter would bury the tables; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend != "tensorflow":
        # Keras imports TensorFlow, when it is installed, to seed it (keras.utils.set_random_seed,
        # which the lecture's preamble calls) even on JAX and torch: there TensorFlow computes
        # nothing, and its oneDNN notice, which TF_CPP_MIN_LOG_LEVEL does not silence
        # (tensorflow 2.21), is noise in every log.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    threads_for(backend)
    return backend


_threads_given = False  # kclf gives torch its thread count once per process


def threads_for(backend: str) -> None:
    """Give ``backend`` the threads kclf runs it with: torch one, the others their own.

    The lecture's models are tiny: a step is dispatch, not arithmetic. Torch's OpenMP threads
    spin-wait, and on a busy machine (or beside other runs) two threads made steps up to 30
    times slower here. Before torch is imported, OMP_NUM_THREADS=1 starts it with one; a
    torch already imported (a script that imported keras before kclf) gets
    ``torch.set_num_threads(1)``, measured as fast. Once per process, and never where
    OMP_NUM_THREADS is set: a count the user chose there, or with ``torch.set_num_threads``
    after the first TrainingTrace, is kept.
    """
    global _threads_given
    if backend != "torch" or _threads_given:
        return
    _threads_given = True
    if "OMP_NUM_THREADS" in os.environ:
        return
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = "1"
    else:
        torch.set_num_threads(1)


def active_backend() -> str:
    """The backend Keras is running on (imports keras)."""
    import keras

    return keras.backend.backend()


def versions(backend: str | None = None) -> dict[str, str]:
    """Python, Keras and backend versions; one backend's or all three."""
    out = {"python": platform.python_version(), "keras": package_version("keras") or "not installed"}
    for name in (validate_name(backend),) if backend else BACKENDS:
        out[name] = package_version(name) or "not installed"
    return out
