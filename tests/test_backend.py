"""kclf.backend: choosing JAX, TensorFlow or PyTorch before keras is imported.

What holds only before keras is imported (and what importing kclf must not do) runs in a new
Python process (:func:`fresh_python`): this one may have imported keras in a backend test
that ran before, and the tests pass in any order.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kclf import backend
from kclf.backend import BackendError, select_backend, validate_name

ROOT = Path(__file__).resolve().parent.parent
# What kclf or a test may have set in this process, and a new process must start without.
_SET_BY_KCLF = ("KERAS_BACKEND", "OMP_NUM_THREADS", "KCLF_DEVICES")


def fresh_python(code: str, **env: str) -> str:
    """Run ``code`` in a new Python process, which has not imported keras, with ``env`` and
    none of KERAS_BACKEND, OMP_NUM_THREADS, KCLF_DEVICES unless given there; its stdout."""
    environ = {k: v for k, v in os.environ.items() if k not in _SET_BY_KCLF}
    environ.update(env, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environ, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(autouse=True)
def _restore_keras_backend(monkeypatch):
    """select_backend writes KERAS_BACKEND; monkeypatch puts the old value back."""
    monkeypatch.delenv("KERAS_BACKEND", raising=False)


def test_importing_kclf_does_not_import_keras():
    out = fresh_python("import sys, kclf.cli, kclf.reference, kclf.registry, kclf.runner; "
                       "print('keras' in sys.modules)")
    assert out.split() == ["False"]


def test_collecting_the_tests_imports_no_keras():
    """The backend-free pass (make test-free) must not import keras: no test module may
    import it while being collected."""
    out = fresh_python("""
        import sys, pytest
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"])
        print("collected", int(code), "keras" in sys.modules)
    """)
    assert out.splitlines()[-1] == "collected 0 False"


@pytest.mark.parametrize(
    "given, expected",
    [("jax", "jax"), ("tensorflow", "tensorflow"), ("torch", "torch"), ("pytorch", "torch"),
     (" JAX ", "jax"), ("TensorFlow", "tensorflow")],
)
def test_validate_name_returns_the_canonical_name(given, expected):
    assert validate_name(given) == expected


@pytest.mark.parametrize("name", ["mxnet", "", "tf", "numpy"])
def test_validate_name_rejects_unknown_names_listing_the_valid_ones(name):
    with pytest.raises(BackendError) as caught:
        validate_name(name)
    message = str(caught.value)
    assert repr(name) in message
    assert "jax, tensorflow, torch" in message
    assert "\n" not in message


def test_backend_error_is_a_kclf_error_with_exit_code_1():
    from kclf.errors import KclfError

    assert issubclass(BackendError, KclfError)
    assert BackendError.exit_code == 1


def test_an_unknown_backend_is_a_usage_error_and_empty_is_unknown(monkeypatch):
    from kclf.backend import UnknownBackend

    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(UnknownBackend, match="unknown backend ''") as caught:
        select_backend("")  # not the default: an empty name was given
    assert caught.value.exit_code == 2


def test_importing_kclf_models_selects_no_backend(tmp_path):  # no import side effect
    code = ("import os, sys; os.environ.pop('KERAS_BACKEND', None); import kclf.models; "
            "print('keras' in sys.modules, os.environ.get('KERAS_BACKEND'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "None"], done.stderr


@pytest.mark.parametrize("name", ["jax", "tensorflow", "torch"])
def test_select_backend_sets_keras_backend(name):
    out = fresh_python(f"""
        import os, sys
        from kclf.backend import select_backend
        print(select_backend({name!r}), os.environ["KERAS_BACKEND"], "keras" in sys.modules)
    """)
    assert out.split() == [name, name, "False"]


def test_select_backend_accepts_the_pytorch_alias():
    out = fresh_python("""
        import os
        from kclf.backend import select_backend
        print(select_backend("pytorch"), os.environ["KERAS_BACKEND"])
    """)
    assert out.split() == ["torch", "torch"]


def test_select_backend_defaults_to_keras_backend_then_tensorflow():
    out = fresh_python("""
        import os
        from kclf.backend import select_backend
        print(select_backend())
        os.environ["KERAS_BACKEND"] = "jax"
        print(select_backend(), select_backend(None))
    """)
    assert out.split() == ["tensorflow", "jax", "jax"]


def test_importing_the_trace_selects_no_backend_and_sets_up_no_devices():
    """Importing kclf.callbacks imports keras (TrainingTrace is a Keras callback, and keras
    reads KERAS_BACKEND and sets TensorFlow's own variables); kclf itself changes no variable
    and splits no CPU: a run does that when it starts (kclf run, kclf compare's children),
    here with KCLF_DEVICES=2."""
    out = fresh_python("""
        import os
        import keras
        import tensorflow as tf
        with_keras = dict(os.environ)
        import kclf.callbacks
        print(dict(os.environ) == with_keras, len(tf.config.list_logical_devices("CPU")))
    """, KERAS_BACKEND="tensorflow", KCLF_DEVICES="2")
    assert out.split() == ["True", "1"]


@pytest.mark.parametrize("omp, threads", [(None, "1"), ("2", "2")])
def test_a_trace_gives_torch_one_thread_unless_omp_num_threads_says(omp, threads):
    """A script that imported torch (through keras) before kclf: the first TrainingTrace gives
    it one thread; a count the user set in OMP_NUM_THREADS is kept."""
    out = fresh_python("""
        import keras
        import torch
        torch.set_num_threads(2)  # as torch starts on a machine with two cores
        from kclf.callbacks import TrainingTrace
        TrainingTrace()
        print(torch.get_num_threads())
    """, KERAS_BACKEND="torch", **({"OMP_NUM_THREADS": omp} if omp else {}))
    assert out.split() == [threads]


def test_select_backend_rejects_an_unknown_name():
    with pytest.raises(BackendError, match="unknown backend 'theano'"):
        select_backend("theano")
    assert "KERAS_BACKEND" not in os.environ


@pytest.mark.parametrize("name", ["jax", "tensorflow", "torch"])
def test_missing_backend_names_the_pip_extra(monkeypatch, name):
    monkeypatch.setattr(backend, "is_installed", lambda requested: requested != name)
    with pytest.raises(BackendError) as caught:
        select_backend(name)
    message = str(caught.value)
    assert f"kclf[{name}]" in message
    assert "not installed" in message
    assert "KERAS_BACKEND" not in os.environ


def test_missing_backend_is_detected_through_find_spec(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "torch" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert backend.is_installed("torch") is False
    assert backend.is_installed("jax") is True
    with pytest.raises(BackendError, match=r"pip install 'kclf\[torch\]'"):
        select_backend("pytorch")


def test_the_extra_a_message_names_installs_that_backend():
    """The pip extra an error tells the user to install is declared in pyproject.toml and
    pulls that backend's package (torch pinned: a looser requirement fetches a CUDA build)."""
    import tomllib

    extras = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
                           )["project"]["optional-dependencies"]
    for name in backend.BACKENDS:
        extra = backend.pip_extra(name)
        assert extra.startswith("kclf[") and extra.endswith("]")
        requirements = extras[extra[len("kclf["):-1]]
        distributions = backend._PACKAGES[name][1]
        assert any(r.startswith(d) for r in requirements for d in distributions), (name, requirements)
    assert extras["torch"] == ["torch==2.13.0"]
    assert set(extras["all"][0][len("kclf["):-1].split(",")) == set(backend.BACKENDS)


def test_switching_after_keras_is_imported_fails_clearly():
    script = textwrap.dedent(
        """
        import os
        os.environ["KERAS_BACKEND"] = "jax"
        import keras
        from kclf.backend import BackendError, select_backend
        assert select_backend("jax") == "jax"  # the running backend is fine
        try:
            select_backend("torch")
        except BackendError as exc:
            print(exc)
        else:
            raise SystemExit("no BackendError")
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    assert "already imported with backend 'jax'" in message
    assert "'torch'" in message
    assert "KERAS_BACKEND=torch" in message


def test_versions_reports_python_keras_and_the_backends():
    import platform

    found = backend.versions()
    assert set(found) == {"python", "keras", "jax", "tensorflow", "torch"}
    assert found["python"] == platform.python_version()
    assert found["keras"].startswith("3.")
    for name in backend.BACKENDS:
        assert found[name] != "not installed"
        assert found[name][0].isdigit()
    out = fresh_python("import sys; from kclf import backend; backend.versions(); print('keras' in sys.modules)")
    assert out.split() == ["False"]  # versions come from the packages' metadata


@pytest.mark.parametrize("name", ["jax", "tensorflow", "torch"])
def test_versions_for_one_backend(name):
    found = backend.versions(name)
    assert set(found) == {"python", "keras", name}
    assert found[name] == backend.versions()[name]


def test_versions_says_not_installed_for_a_missing_package(monkeypatch):
    monkeypatch.setattr(backend, "package_version", lambda name: None)
    found = backend.versions("torch")
    assert found == {
        "python": found["python"], "keras": "not installed", "torch": "not installed"
    }
