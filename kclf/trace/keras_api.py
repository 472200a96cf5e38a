"""Every private Keras name kclf touches, in one place: the training trace's, and the demos'.

TrainingTrace records inside the model's own train step, which public Keras does not
offer: it wraps methods of the model and the optimizer and adds state to both. The demos'
TensorFlow capture (kclf.demos.start.Capture) records the order in which Keras shuffles the
rows, inside the data pipeline Keras builds. The names below exist in the Keras versions
:func:`check_supported` accepts; a Keras upgrade that renames one breaks this module only,
and ``check_supported`` says so in one line before anything changes on the model.

    Model.compute_loss                  the training loss of the step (Keras's own step and a
                                        custom train_step that calls it)
    Model._metrics                      where the hidden loss recorder is listed
    Model._jax_state(_synced), jax_state_sync
                                        JAX's training state between steps, read by device.py
    Model._flatten_layers, _build_by_run_for_single_pos_arg
                                        a model marked built whose layers are not
    Optimizer.apply                     one whole update: what it leaves in the weights
                                        (after constraints and an EMA overwrite)
    Optimizer._apply_weight_decay       runs first in every update: the weights before
    Optimizer._backend_update_step      the gradients applied, the learning rate
    Optimizer._track_variable / _untrack_variable
    LossScaleOptimizer.inner_optimizer  the optimizer that applies unscaled gradients
    LossScaleOptimizer._stateless_handle_non_finite_grads / _stateful_handle_non_finite_grads
                                        a step skipped because the scaled gradients overflowed
    keras.src.backend.common.stateless_scope.get_stateless_scope
                                        JAX: whether the step's state carries the loss ring
    ag_pass_through (TensorFlow)        an error raised while autograph traces, left as it is
    keras.src.trainers.data_adapters.array_data_adapter.ArrayDataAdapter.get_tf_dataset,
    and its _inputs, _shuffle, _num_samples
                                        the capture: TensorFlow's pipeline over the arrays

Not here: the demos' torch capture patches ``torch.utils.data.RandomSampler.__iter__``,
torch's public class, and checks itself that Keras's torch trainer shuffles through it.
"""

from __future__ import annotations

from contextlib import contextmanager

from kclf.errors import KclfError

MIN_KERAS = (3, 10, 0)  # the oldest keras make test passes with (pyproject.toml says the same)

TRACE = "TrainingTrace"
CAPTURE = "the demos' TensorFlow capture"

_MODEL_METHODS = ("compute_loss", "_flatten_layers", "_build_by_run_for_single_pos_arg")
_SCALER_METHODS = ("_stateless_handle_non_finite_grads", "_stateful_handle_non_finite_grads")
_OPTIMIZER_METHODS = ("apply", "_apply_weight_decay", "_backend_update_step", "_track_variable",
                      "_untrack_variable")
_ADAPTER_ATTRIBUTES = ("_inputs", "_shuffle", "_num_samples")  # set in ArrayDataAdapter.__init__


def _version(text: str) -> tuple[int, ...]:
    import re

    parts = []
    for piece in text.split(".")[:3]:
        digits = re.match(r"\d*", piece).group()
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_supported(user: str = TRACE) -> None:
    """Raise a one-line error unless the installed Keras has every name ``user`` relies on:
    TrainingTrace (TRACE, the default) or the demos' TensorFlow capture (CAPTURE)."""
    import keras

    found = keras.__version__
    if user == CAPTURE:
        missing = _missing_adapter_names()
    else:
        missing = [f"Model.{n}" for n in _MODEL_METHODS if not hasattr(keras.Model, n)]
        missing += [f"Optimizer.{n}" for n in _OPTIMIZER_METHODS
                    if not hasattr(keras.optimizers.Optimizer, n)]
        scaler = keras.optimizers.LossScaleOptimizer
        missing += [f"LossScaleOptimizer.{n}" for n in _SCALER_METHODS if not hasattr(scaler, n)]
    if _version(found) < MIN_KERAS or missing:
        need = ".".join(map(str, MIN_KERAS))
        why = f" (missing {', '.join(missing)})" if missing else ""
        raise KclfError(f"{user} needs keras >= {need}; found keras {found}{why}")


def _missing_adapter_names() -> list[str]:
    try:
        from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
    except ImportError:
        return ["keras.src.trainers.data_adapters.array_data_adapter.ArrayDataAdapter"]
    missing = [] if hasattr(ArrayDataAdapter, "get_tf_dataset") else ["ArrayDataAdapter.get_tf_dataset"]
    names = ArrayDataAdapter.__init__.__code__.co_names  # the attributes its __init__ sets
    return missing + [f"ArrayDataAdapter.{n}" for n in _ADAPTER_ATTRIBUTES if n not in names]


@contextmanager
def shuffled_array_pipelines(wrap):
    """TensorFlow, inside the block: every shuffled training pipeline Keras builds over arrays
    carries each row's index. ``wrap(dataset, rows)`` gets that tf.data.Dataset of (data,
    row index) and the number of rows, and returns the dataset fit trains on; validation and
    evaluation pipelines (not shuffled) are Keras's own."""
    import numpy as np
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    original = ArrayDataAdapter.get_tf_dataset

    def get_tf_dataset(adapter):
        if not adapter._shuffle:
            return original(adapter)
        inputs = adapter._inputs
        adapter._inputs = (inputs, np.arange(adapter._num_samples, dtype="int64"))
        try:
            dataset = original(adapter)
        finally:
            adapter._inputs = inputs
        return wrap(dataset, adapter._num_samples)

    ArrayDataAdapter.get_tf_dataset = get_tf_dataset
    try:
        yield
    finally:
        ArrayDataAdapter.get_tf_dataset = original


def applying_optimizer(model):
    """The optimizer whose update step applies the gradients: the inner one of a
    LossScaleOptimizer (mixed_float16), which receives the unscaled gradients."""
    optimizer = model.optimizer
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def gradient_accumulation(optimizer):
    return getattr(optimizer, "gradient_accumulation_steps", None)


def patch_optimizer(optimizer, make_apply, make_weight_decay, make_update_step) -> None:
    """Wrap the optimizer's whole update, its weight decay and its update step (instance
    attributes: ``apply_gradients`` and ``stateless_apply`` call ``self.apply``)."""
    apply, decay, update = optimizer.apply, optimizer._apply_weight_decay, optimizer._backend_update_step
    object.__setattr__(optimizer, "apply", make_apply(apply))
    object.__setattr__(optimizer, "_apply_weight_decay", make_weight_decay(decay))
    object.__setattr__(optimizer, "_backend_update_step", make_update_step(update))


def unpatch_optimizer(optimizer) -> None:
    for name in ("apply", "_apply_weight_decay", "_backend_update_step", "_all_reduce_sum_gradients"):
        optimizer.__dict__.pop(name, None)


def capture_all_reduce(optimizer, into: dict) -> None:
    """TensorFlow: the update step sums the replicas' gradients itself
    (``_all_reduce_sum_gradients``) before applying them; keep what it returns in ``into``
    (position -> gradient), so the trace records the applied gradients, not one replica's."""
    original = getattr(optimizer, "_all_reduce_sum_gradients", None)
    if original is None:
        return

    def all_reduce_sum_gradients(grads_and_vars):
        reduced = original(grads_and_vars)
        into.clear()
        into.update({i: g for i, (g, _) in enumerate(reduced)})
        return reduced

    object.__setattr__(optimizer, "_all_reduce_sum_gradients", all_reduce_sum_gradients)


def sum_over_replicas(value):
    """Inside a tf.distribute replica context with several replicas: the SUM all-reduce of
    ``value``; else ``value``."""
    from keras import backend

    if backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def track(optimizer, variables) -> None:
    for v in variables:
        optimizer._track_variable(v)


def untrack(optimizer, variables) -> None:
    for v in variables:
        optimizer._untrack_variable(v)


def patch_compute_loss(model, on_loss) -> None:
    """Call ``on_loss(loss)`` with every training loss the model computes, inside the step:
    Keras's train step calls ``compute_loss`` (through ``_compute_loss``), and so does a
    custom train_step written as the Keras guides show. The arguments pass through as given:
    an override without ``training`` gets none."""
    original = model.compute_loss

    def compute_loss(*args, **kwargs):
        loss = original(*args, **kwargs)
        if kwargs.get("training", args[4] if len(args) > 4 else True):
            on_loss(loss)
        return loss

    object.__setattr__(model, "compute_loss", compute_loss)


def unpatch_compute_loss(model) -> None:
    model.__dict__.pop("compute_loss", None)


def writable_in_step(variable) -> bool:
    """Whether the train step can assign ``variable``: on JAX only inside a StatelessScope
    that maps it (Keras's own step maps the metrics' variables when it computes the loss);
    anywhere else the value would be a tracer leaking out of the step. TensorFlow and
    PyTorch assign in place."""
    from keras import backend

    if backend.backend() != "jax":
        return True
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    scope = get_stateless_scope()
    return scope is not None and scope.get_current_value(variable) is not None


def raise_in_step(error: Exception):
    """Raise ``error`` from inside the train step as it is: while TensorFlow's autograph
    traces the step it rewrites an exception into a multi-line one, unless the exception
    asks to pass through."""
    error.ag_pass_through = True
    raise error


def add_metric(model, metric) -> None:
    if metric not in model._metrics:
        model._metrics.append(metric)


def remove_metric(model, metric) -> None:
    if metric in model._metrics:
        model._metrics.remove(metric)


def compile_identity(model) -> tuple:
    """What a compiled train function depends on besides the variables: a recompile or a
    new optimizer gives a new identity."""
    return (id(model.optimizer), id(getattr(model, "_compile_loss", None)),
            int(getattr(model, "steps_per_execution", 1) or 1), bool(getattr(model, "jit_compile", False)))


def jax_state(model):
    """JAX's training state between steps, or None when the variables hold the values."""
    state = getattr(model, "_jax_state", None)
    if state and not getattr(model, "_jax_state_synced", True):
        return state
    return None


def sync_state(model) -> None:
    """JAX: put the training state back into the model's variables (fit purges them during
    an epoch and syncs at its end; a fit that stops in between must do it)."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def fit_codes(model) -> set:
    """The code objects of the model's fit methods (Keras's and any override): one of them is
    on the stack while a fit of the model runs."""
    import inspect

    codes = set()
    for cls in type(model).__mro__:
        fit = cls.__dict__.get("fit")
        code = getattr(inspect.unwrap(fit), "__code__", None) if fit is not None else None
        if code is not None:
            codes.add(code)
    return codes


def unbuilt_layers(model) -> list:
    return [layer for layer in model._flatten_layers() if not layer.built]


def build_layers(model) -> None:
    """Build the layers of a model marked built whose layers are not (a subclassed model's
    ``build(shape)`` without its own build method, on TensorFlow, where fit would build them
    at the first step): run it on symbolic inputs of the shape it was built with, as fit does
    on JAX and PyTorch before the callbacks start."""
    config = model.get_build_config() or {}
    if "input_shape" in config:
        model._build_by_run_for_single_pos_arg(config["input_shape"])


def patch_make_train_function(model, before) -> None:
    """Call ``before()`` first whenever fit starts: Keras asks for the train function at the
    start of every fit, traced or not, which tells a trace that its last fit raised."""
    original = type(model).make_train_function

    def make_train_function(*args, **kwargs):
        before()
        made = original(model, *args, **kwargs)
        _restore_if_refused(model)
        return made

    object.__setattr__(model, "make_train_function", make_train_function)


def _restore_if_refused(model) -> None:
    """JAX: fit takes the weights out of the model's variables before its first step and
    puts them back at the epoch's end. A step the trace refuses while JAX traces it never
    runs, so the state it was given is intact: put it back, and the model keeps its
    weights. The first call only; then Keras's own function again (one wrapper per
    function: a reused train function stays the same object)."""
    from keras import backend

    function = model.train_function
    if backend.backend() != "jax" or function is None or getattr(function, "kclf_first", False):
        return
    first_call = getattr(function, "kclf_first_call", None)
    if first_call is None:
        def first_call(state, *args, **kwargs):
            try:
                result = function(state, *args, **kwargs)
            except KclfError:
                for variables, values in zip((model.trainable_variables, model.non_trainable_variables,
                                              model.optimizer.variables, model.metrics_variables), state):
                    for variable, value in zip(variables, values):
                        variable.assign(value)
                raise
            if model.train_function is first_call:
                model.train_function = function
            return result

        first_call.kclf_first = True
        function.kclf_first_call = first_call
    model.train_function = first_call


def unpatch_make_train_function(model) -> None:
    model.__dict__.pop("make_train_function", None)


def count_skipped_steps(scaler, counter) -> None:
    """Add 1 to ``counter`` (a variable of the inner optimizer) whenever the loss-scale
    optimizer skips a step: JAX's stateless path and the others' stateful one."""
    stateless = scaler._stateless_handle_non_finite_grads
    stateful = scaler._stateful_handle_non_finite_grads

    def stateless_skip(optimizer_variables, trainable_variables):
        trainable, new_variables = stateless(optimizer_variables, trainable_variables)
        new_variables = list(new_variables)
        i = next(i for i, v in enumerate(scaler.variables) if v is counter)
        new_variables[i] = new_variables[i] + 1.0
        return trainable, new_variables

    def stateful_skip(*args, **kwargs):
        out = stateful(*args, **kwargs)
        counter.assign_add(1.0)
        return out

    object.__setattr__(scaler, "_stateless_handle_non_finite_grads", stateless_skip)
    object.__setattr__(scaler, "_stateful_handle_non_finite_grads", stateful_skip)


def patch_scaler_updates(scaler, wrap) -> None:
    """Wrap the loss-scale optimizer's ``apply`` (TensorFlow, PyTorch) and
    ``stateless_apply`` (JAX): one of them runs once per train step, also a skipped one."""
    for name in ("apply", "stateless_apply"):
        object.__setattr__(scaler, name, wrap(getattr(scaler, name)))


def unpatch_scaler(scaler) -> None:
    """Take off what count_skipped_steps and patch_scaler_updates put on."""
    for name in ("_stateless_handle_non_finite_grads", "_stateful_handle_non_finite_grads", "apply",
                 "stateless_apply"):
        scaler.__dict__.pop(name, None)
