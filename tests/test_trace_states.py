"""StepStates and the one-step replay on this backend: a step run again from its recorded
state, on its batch, is the step the fit took, bit for bit (the replay measures the backend,
not itself); and the update from the fit's own gradient is the fit's update."""

import math

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.backend

ROWS, BATCH, EPOCHS, EVERY = 40, 16, 3, 2  # 3 steps an epoch, the last one of 8 rows


def _fit(tmp_path, class_weight=None):
    import keras

    from kclf.callbacks import TrainingTrace
    from kclf.trace.states import StepStates

    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 3))  # float64, as the demos' frames give them
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype("int64")
    orders = np.stack([rng.permutation(ROWS) for _ in range(EPOCHS)])
    steps = math.ceil(ROWS / BATCH)

    def rows(step):
        epoch, i = divmod(step - 1, steps)
        return orders[epoch, i * BATCH:(i + 1) * BATCH]

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return steps * EPOCHS

        def __getitem__(self, i):
            return x[rows(i + 1)], y[rows(i + 1)]

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    states, trace = StepStates(EVERY, rows=rows), TrainingTrace(every=EVERY)
    model.fit(Batches(), epochs=EPOCHS, steps_per_epoch=steps, shuffle=False, verbose=0,
              callbacks=[states, trace], class_weight=class_weight)
    states.save(tmp_path / "states", "fit/one", model, x, y, class_weight)
    return trace.to_frame()


@pytest.mark.parametrize("class_weight", [None, {0: 1, 1: 3}])
def test_a_replayed_step_is_the_step_the_fit_took(tmp_path, class_weight):
    from kclf.compare.replay import replay_fit

    frame = _fit(tmp_path, class_weight)
    steps = sorted(set(frame["step"]))
    assert steps == list(range(1, EPOCHS * 3 + 1, EVERY))
    grads = np.stack([frame[frame["step"] == s]["gradient"].to_numpy("float32") for s in steps])
    replay = replay_fit(tmp_path / "states", "fit/one", steps, grads)
    assert list(replay["step"].drop_duplicates()) == steps and len(replay) == len(frame)
    for column in ("weight_before", "gradient", "weight_after", "loss", "learning_rate"):
        assert np.array_equal(replay[column].to_numpy(), frame[column].to_numpy()), column
    assert np.array_equal(replay["update_after"].to_numpy(), frame["weight_after"].to_numpy())


def test_states_hold_the_optimizers_variables_not_the_traces(tmp_path):
    import json

    _fit(tmp_path)
    with np.load(tmp_path / "states" / "fit%2Fone.npz") as npz:
        meta = json.loads(str(npz["meta"]))
        assert npz["steps"].tolist() == [1, 3, 5, 7, 9]
        assert npz["o0"].ravel().tolist() == [0, 2, 4, 6, 8]  # the step count before each step
        assert npz["rows"].shape == (5, BATCH) and (npz["rows"][-1] >= 0).sum() == ROWS - 2 * BATCH  # a last batch
    assert not any("kclf" in name for name in meta["optimizer_variables"])
    assert len(meta["optimizer_variables"]) == 2 + 2 * 4  # iterations, lr, m and v of 4 variables
    assert isinstance(pd.Series(meta["variables"]).iloc[0], str)
