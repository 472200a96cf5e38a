"""kclf.progress: a long fit says where it is on stderr, whatever stderr is."""

import io

import numpy as np
import pytest

pytestmark = pytest.mark.backend


def fit(callback) -> None:
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[callback])


def test_a_fit_says_its_epoch_every_interval_on_the_stream_it_is_given(backend_name):
    from kclf.progress import PREFIX, fit_progress

    stream = io.StringIO()  # not a terminal: the lines come all the same
    fit(fit_progress("tiny", every=1e-9, stream=stream))
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith(f"{PREFIX} 'tiny': epoch ") for line in lines)
    assert lines[-1].startswith(f"{PREFIX} 'tiny': epoch 3 of 3, ") and "loss" in lines[-1]


def test_an_interval_of_zero_says_nothing(backend_name, monkeypatch):
    from kclf.progress import fit_progress

    monkeypatch.setenv("KCLF_PROGRESS_S", "0")
    stream = io.StringIO()
    fit(fit_progress("quiet", stream=stream))
    assert stream.getvalue() == ""
