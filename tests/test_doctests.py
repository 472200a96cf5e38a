"""The docstrings' examples run (doctest) and print what they say: the backend-free modules
once, kclf.models (which builds Keras models) on each backend."""

import doctest
import importlib

import pytest

MODULES = ["kclf.backend", "kclf.demo_data", "kclf.functions", "kclf.reference", "kclf.trace.store",
           "kclf.trace.variables"]


def run_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_print_what_they_say(name):
    run_examples(name)


@pytest.mark.backend
def test_the_model_factories_example_runs_on_this_backend(backend_name):
    run_examples("kclf.models")
