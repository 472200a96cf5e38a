"""The trace's rings on the device: a row written inside the train step (:func:`pack`,
:func:`write_slot`) and read between steps (:class:`StateReader`), on every backend.

This is the one place where kclf knows how a backend keeps training state.
TensorFlow and PyTorch update variables in place, so their value is current.
JAX's fit() keeps the state outside the variables (``model._jax_state``) and writes
it back only at the end of an epoch; between steps we read our few arrays from
that state instead of forcing a full state sync, which would copy every weight.
"""

from __future__ import annotations

import numpy as np
from keras import backend, ops

from kclf.trace.keras_api import jax_state


class StateReader:
    """Reads selected optimizer and metric variables of ``model`` as NumPy arrays."""

    def __init__(self, model, variables):
        self.model = model
        self.variables = list(variables)
        self._where = None  # lazily built: (state key, index) per variable for JAX

    def _jax_locations(self):
        if self._where is None:
            keys = {id(v): ("optimizer_variables", i) for i, v in enumerate(self.model.optimizer.variables)}
            keys.update({id(v): ("metrics_variables", i) for i, v in enumerate(self.model.metrics_variables)})
            self._where = [keys[id(v)] for v in self.variables]
        return self._where

    def read(self) -> list[np.ndarray] | None:
        """The values, or None where JAX no longer has them: a KeyboardInterrupt that
        fit did not wait for (a second Ctrl-C) can land after a step consumed the state it
        was given and before fit kept the new one, or while fit had taken the values out of
        the variables."""
        state = jax_state(self.model)
        if state is not None:
            arrays = [state[key][i] for key, i in self._jax_locations()]
        else:
            arrays = [_current(v.value) for v in self.variables]
        if any(a is None or _deleted(a) for a in arrays):
            return None
        return [np.asarray(ops.convert_to_numpy(a)) for a in arrays]


def _deleted(array) -> bool:
    is_deleted = getattr(array, "is_deleted", None)  # a JAX array given to a step that donated it
    return bool(is_deleted()) if callable(is_deleted) else False


def _current(value):
    """A tf.distribute variable reads as its aggregate (the first replica's copy for the
    trace's rings); anything else is already a value."""
    read = getattr(value, "read_value", None)
    return read() if read is not None and hasattr(value, "_distribute_strategy") else value


def write_slot(buffer, slot, value) -> None:
    """buffer[slot] = value, inside the train step, as cheaply as the backend allows.

    ``slot`` is None for a ring of one. PyTorch runs eagerly, where each Keras op costs
    ~10 µs of dispatch: copy in place with native ops. TensorFlow scatters the row into
    its variable in place. JAX is functional: slice_update on the donated state, which
    XLA performs in place.
    """
    name = backend.backend()
    if name == "torch":
        import torch

        with torch.no_grad():
            target = buffer.value
            src = value.value if hasattr(value, "value") and not isinstance(value, torch.Tensor) else value
            src = torch.as_tensor(src).detach().to(target.dtype)
            if slot is None:
                target.copy_(src.reshape(target.shape))
            else:
                target[slot].copy_(src.reshape(target.shape[1:]))
        return
    value = ops.cast(value, buffer.dtype)
    if slot is None:
        buffer.assign(ops.reshape(value, buffer.shape))
    elif name == "tensorflow":
        import tensorflow as tf

        # A scatter writes the row in place; a sliced assign reads the variable first,
        # which makes TensorFlow copy the whole ring before writing.
        row = tf.reshape(value, (1,) + tuple(buffer.shape[1:]))
        index = tf.reshape(tf.cast(slot, "int32"), (1,))
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # tf.distribute: per-replica (on-read) variables have no scatter_update; the
            # whole-variable assign goes through the variable's aggregation instead.
            buffer.assign(tf.tensor_scatter_nd_update(buffer.value.read_value(), index[:, None], row))
        else:
            buffer.value.scatter_update(tf.IndexedSlices(row, index))
    else:
        start = (slot,) + (0,) * (len(buffer.shape) - 1)
        buffer.assign(ops.slice_update(buffer.value, start, ops.expand_dims(value, 0)))


def pack(values):
    """One flat float32 tensor of ``values`` (each flattened in C order), inside the step:
    the packed row that ``write_slot`` stores with a single write."""
    if backend.backend() == "torch":
        import torch

        with torch.no_grad():
            flat = [torch.as_tensor(v.value if hasattr(v, "value") and not isinstance(v, torch.Tensor) else v)
                    .detach().reshape(-1).to(torch.float32) for v in values]
            return torch.cat(flat)
    return ops.concatenate([ops.reshape(ops.cast(v, "float32"), (-1,)) for v in values])


def snapshot(variable):
    """The variable's current value, kept: torch updates parameters in place, and a
    TensorFlow variable is read where the value is used unless read now."""
    value = variable.value
    name = backend.backend()
    if name == "torch":
        return value.detach().clone()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.identity(value)
    return value
