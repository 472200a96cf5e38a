"""Data parallelism on virtual CPU devices: N devices in one process, on every backend.

Keras cannot change its backend's devices once the backend has started, so the set-up is
in two halves:

* :func:`environment` (before the backend is imported, e.g. in a child process's
  environment): JAX reads ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and
  ``JAX_NUM_CPU_DEVICES=N`` when it starts; ``KCLF_DEVICES=N`` tells :func:`configure`.
* :func:`configure` (after import, before the first op): TensorFlow splits its CPU into N
  logical devices.

:func:`data_parallel` then gives the scope in which a model is built, compiled and fit:
``keras.distribution.DataParallel`` over the N devices on JAX, ``tf.distribute.MirroredStrategy``
on TensorFlow. Keras 3.15's torch backend has no DataParallel (it comes with Keras 3.16): there
:func:`data_parallel` raises a one-line error.
"""

from __future__ import annotations

import contextlib
import os

from kclf.errors import KclfError

ENV = "KCLF_DEVICES"
# More virtual devices than any CPU has hardware threads is a typo, not a plan: a count such
# as 10**20 reached the children, where JAX failed in many lines and TensorFlow with an
# OverflowError, and far smaller ones make every replica and thread pool a cost (measured:
# JAX starts 4,096 CPU devices in 7.7 s and 0.6 GB before any model).
MAX_DEVICES = 1024
TORCH_MESSAGE = ("keras {version}'s torch backend has no DataParallel (it is merged upstream for Keras 3.16); "
                 "expected KERAS_BACKEND=jax or tensorflow for {n} devices")


_STRATEGIES: dict = {}


def torch_has_data_parallel() -> bool:
    """Whether the installed Keras gives its torch backend DataParallel (3.16 on)."""
    from importlib.metadata import version

    digits = [int(p) if p.isdigit() else 0 for p in version("keras").split(".")[:2]]
    return tuple(digits) >= (3, 16)


def is_count(n) -> bool:
    """Whether ``n`` is a device count kclf sets up: an integer from 1 to MAX_DEVICES."""
    return isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_DEVICES


def requested() -> int:
    """The device count asked for through the environment (1 when none)."""
    text = os.environ.get(ENV, "1")
    try:
        n = int(text)
    except ValueError:
        n = None
    if not is_count(n):
        raise KclfError(f"{ENV}={text!r} is not a device count; expected a positive integer, "
                        f"at most {MAX_DEVICES}")
    return n


def environment(n: int, env: dict | None = None) -> dict:
    """A copy of ``env`` (default os.environ) in which a new process starts with ``n`` CPU devices."""
    if not is_count(n):
        raise KclfError(f"--devices {n!r} is not a device count; expected a positive integer, "
                        f"at most {MAX_DEVICES}")
    out = dict(os.environ if env is None else env)
    out[ENV] = str(n)
    if n > 1:
        flags = [f for f in out.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
        out["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={n}"])
        out["JAX_NUM_CPU_DEVICES"] = str(n)
        out["JAX_PLATFORMS"] = out.get("JAX_PLATFORMS") or "cpu"
    return out


def configure(n: int | None = None) -> int:
    """Make ``n`` (default: :func:`requested`) CPU devices visible to the running backend;
    returns how many there are. Call before the backend runs its first op."""
    n = requested() if n is None else n
    if n == 1:
        return 1
    import keras

    name = keras.backend.backend()
    if name == "torch" and not torch_has_data_parallel():
        raise KclfError(TORCH_MESSAGE.format(version=keras.__version__, n=n))
    if name == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        current = tf.config.get_logical_device_configuration(cpu)
        if not current or len(current) != n:
            try:
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
            except RuntimeError:
                raise KclfError(f"TensorFlow started before kclf could split its CPU into {n} devices; "
                                "expected kclf.devices.configure() before the first TensorFlow op") from None
    if name == "jax":
        _jax_cpu_devices(n)
    found = len(cpu_devices())
    if found < n:
        hint = (f"XLA_FLAGS=--xla_force_host_platform_device_count={n} before jax is imported"
                if name == "jax" else "a backend with data parallelism")
        raise KclfError(f"{n} CPU devices wanted, {found} found on the {name} backend; expected {hint}")
    return n


def _jax_cpu_devices(n: int) -> None:
    """JAX reads its CPU device count when its backend starts, which importing Keras does
    not do: asking for ``n`` then still works without XLA_FLAGS in the environment."""
    import jax

    try:
        if jax.config.jax_num_cpu_devices < n:
            jax.config.update("jax_num_cpu_devices", n)
    except (AttributeError, RuntimeError):
        pass  # an older jax, or its backend already started: the count check below says so


def cpu_devices() -> list:
    import keras

    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices("CPU")]
    if name == "jax":
        return keras.distribution.list_devices("cpu")
    return ["cpu:0"]


@contextlib.contextmanager
def data_parallel(n: int):
    """Build, compile and fit a model inside this to train it on ``n`` CPU devices
    (``n`` = 1: no distribution at all, the plain single-device run)."""
    import keras

    if n == 1:
        yield None
        return
    name = keras.backend.backend()
    if name == "torch" and not torch_has_data_parallel():
        raise KclfError(TORCH_MESSAGE.format(version=keras.__version__, n=n))
    configure(n)
    if name == "jax":
        devices = keras.distribution.list_devices("cpu")[:n]
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield keras.distribution.distribution()
        finally:
            keras.distribution.set_distribution(previous)
        return
    import tensorflow as tf

    # One strategy per device count and process: a second MirroredStrategy over the same
    # devices reuses collective instance keys, and its all-reduces then meet the first
    # one's ("Shape mismatch in the collective instance").
    strategy = _STRATEGIES.get(n)
    if strategy is None:
        strategy = _STRATEGIES[n] = tf.distribute.MirroredStrategy(cpu_devices()[:n])
    with strategy.scope():
        yield strategy
