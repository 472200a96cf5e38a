"""kclf.backend: choosing JAX, TensorFlow or PyTorch before keras is imported.

These tests run in the process that never imports keras; the one case that needs keras
imported runs in a subprocess.
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


@pytest.fixture(autouse=True)
def _restore_keras_backend(monkeypatch):
    """select_backend writes KERAS_BACKEND; monkeypatch puts the old value back."""
    monkeypatch.delenv("KERAS_BACKEND", raising=False)


def test_importing_kclf_does_not_import_keras():
    import kclf.cli  # noqa: F401
    import kclf.reference  # noqa: F401
    import kclf.registry  # noqa: F401
    import kclf.runner  # noqa: F401

    # Also catches a backend-marked test module that imports keras while being collected.
    assert "keras" not in sys.modules


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


def test_an_unknown_backend_is_a_usage_error_and_empty_is_unknown(monkeypatch):  # issue 12, failure 9
    from kclf.backend import UnknownBackend

    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(UnknownBackend, match="unknown backend ''") as caught:
        select_backend("")  # not the default: an empty name was given
    assert caught.value.exit_code == 2


def test_importing_kclf_models_selects_no_backend(tmp_path):  # issue 12: no import side effect
    code = ("import os, sys; os.environ.pop('KERAS_BACKEND', None); import kclf.models; "
            "print('keras' in sys.modules, os.environ.get('KERAS_BACKEND'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "None"], done.stderr


@pytest.mark.parametrize("name", ["jax", "tensorflow", "torch"])
def test_select_backend_sets_keras_backend(name):
    assert select_backend(name) == name
    assert os.environ["KERAS_BACKEND"] == name
    assert "keras" not in sys.modules


def test_select_backend_accepts_the_pytorch_alias():
    assert select_backend("pytorch") == "torch"
    assert os.environ["KERAS_BACKEND"] == "torch"


def test_select_backend_defaults_to_keras_backend_then_tensorflow(monkeypatch):
    assert select_backend() == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert select_backend() == "jax"
    assert select_backend(None) == "jax"


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
    assert "keras" not in sys.modules


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
