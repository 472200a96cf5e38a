"""kclf.trace.keras_api: the one module of private Keras names; ``check_supported`` names an
unsupported keras, or a missing name, in one line before anything changes.

The slide cases and the checks are tests/_trace_cases.py's.
"""

from __future__ import annotations

import pytest
from _trace_cases import BATCH_SIZE, CASES, X, build, fit_with_trace, kclf_leftovers, sgd


def test_version_parsing_of_the_keras_check():
    from kclf.trace.keras_api import MIN_KERAS, _version

    assert _version("3.15.1") > _version("3.10.0") >= _version("3.4.0")
    assert _version("3.10.0rc1") == (3, 10, 0) and _version("3.3.3") < MIN_KERAS <= _version("3.15.1")


@pytest.mark.backend
def test_an_unsupported_keras_is_named_in_one_line_before_anything_changes(monkeypatch):
    import keras

    from kclf.errors import KclfError

    case = CASES["linear-mse"]
    model = build(case, sgd())
    model.fit(X, case.y, batch_size=BATCH_SIZE, verbose=0)
    n_variables = len(model.optimizer.variables)
    monkeypatch.setattr(keras, "__version__", "3.3.3")

    with pytest.raises(KclfError, match=r"needs keras >= 3\.\d+\.\d+; found keras 3\.3\.3") as error:
        fit_with_trace(model, X, case.y)
    assert "\n" not in str(error.value)
    assert kclf_leftovers(model, n_variables) == []


@pytest.mark.backend
def test_the_demos_capture_names_its_missing_keras_names_in_one_line(monkeypatch):
    import keras

    from kclf.errors import KclfError
    from kclf.trace import keras_api as api

    api.check_supported(api.CAPTURE)  # this keras has every name the capture uses
    monkeypatch.setattr(api, "_ADAPTER_ATTRIBUTES", ("_inputs", "_shuffle", "_row_count"))
    with pytest.raises(KclfError) as error:
        api.check_supported(api.CAPTURE)
    need = ".".join(map(str, api.MIN_KERAS))
    assert str(error.value) == (f"the demos' TensorFlow capture needs keras >= {need}; found keras "
                                f"{keras.__version__} (missing ArrayDataAdapter._row_count)")
    api.check_supported()  # the trace needs none of them
