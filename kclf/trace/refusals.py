"""What the training trace refuses, each in one line naming what is wrong and what is expected.

Checked before a fit changes anything: a model without a compiled optimizer, with gradient
accumulation, without trainable weights, with a trainable integer variable
(:func:`check_model`). Raised while the train step is traced, before it runs
(kclf.trace.hooks): a step whose loss does not go through ``compute_loss``
(:func:`loss_problem`), a recorded variable that gets no gradient (:func:`no_gradient`).
"""

from __future__ import annotations

from kclf.errors import KclfError
from kclf.trace import keras_api as api


def check_model(model) -> None:
    """The model is compiled with an optimizer that applies one update per step, and has
    trainable weights to record; else one line saying why not."""
    if getattr(model, "optimizer", None) is None:
        raise KclfError("TrainingTrace needs a compiled model (model.compile(optimizer=..., loss=...))")
    steps = api.gradient_accumulation(api.applying_optimizer(model))
    if steps:
        raise KclfError(f"TrainingTrace does not support gradient_accumulation_steps (= {steps}); "
                        "expected None: the optimizer applies one update per several steps")


def check_weights(model) -> None:
    """The model has trainable weights to record, or one line saying why not."""
    if not model.trainable_variables and model.built and api.unbuilt_layers(model):
        api.build_layers(model)  # TensorFlow: model.build(shape) left its layers unbuilt
    if model.trainable_variables:
        return
    unbuilt = api.unbuilt_layers(model)
    if not model.built:  # TensorFlow builds an Input-less Sequential at its first batch
        raise KclfError(f"model {model.name!r} has no weights yet (it is built at its first "
                        "batch); TrainingTrace records them from the first step: give it "
                        "keras.Input(shape) or call model.build(input_shape) before fit")
    if unbuilt:
        raise KclfError(f"model {model.name!r} is marked built but its layers "
                        f"{[layer.name for layer in unbuilt]} are not (model.build could not run it); "
                        "TrainingTrace records the weights from the first step: call the model "
                        "on a batch (model(x[:1])) before fit")
    frozen = len(model.weights)
    why = (f"its {frozen} weights are all non-trainable: frozen layers or trainable=False" if frozen
           else "it has no weights at all")
    raise KclfError(f"model {model.name!r} has no trainable weights ({why}), so the optimizer "
                    "updates nothing; TrainingTrace records updates: expected a model with at "
                    "least one trainable weight")


def check_dtypes(variables, every) -> None:
    """Only float variables get gradients: an integer one would make Keras drop it."""
    wrong = [v for v in variables if "float" not in str(v.dtype)]
    if wrong:
        floats = [v.path for v in every if "float" in str(v.dtype)]
        expected = "them non-trainable (trainable=False)" + (f" or variables={floats}" if floats else "")
        raise KclfError(f"trainable variables {[f'{v.path} ({v.dtype})' for v in wrong]} are not float, "
                        "so they get no gradient and the optimizer never updates them; TrainingTrace "
                        f"records float variables: expected {expected}")


def loss_problem(model_name: str, losses: int, backend: str) -> str:
    """Why a train step that computed ``losses`` losses through compute_loss before its
    optimizer update (not one) cannot be recorded."""
    if losses > 1:
        return (f"model {model_name!r}: its train step computes {losses} losses through compute_loss "
                "before one optimizer update; TrainingTrace records one loss per step: expected one "
                "compute_loss call per train step")
    if backend == "jax":
        return (f"model {model_name!r}: its train step does not compute its loss with "
                "stateless_compute_loss (a custom train_step with its own loss, or with compute_loss, "
                "whose state the JAX step drops), so TrainingTrace cannot record the loss; expected "
                "train_step to get its loss and metrics_variables from self.stateless_compute_loss(...), "
                "or a fit without the trace")
    return (f"model {model_name!r}: its train step does not compute its loss with compute_loss (a "
            "custom train_step with its own loss), so TrainingTrace cannot record the loss; expected "
            "train_step to get its loss from self.compute_loss(...), or a fit without the trace")


def no_gradient(missing, kept) -> str:
    """Why recorded variables that get no gradient (``missing``) cannot be recorded."""
    names = [v.path for v in missing]
    keep = f"variables={[v.path for v in kept]}" if kept else "a loss that depends on them"
    return (f"variables {names} get no gradient (the loss does not depend on them), so the optimizer "
            f"does not update them and TrainingTrace has nothing to record; expected {keep}")
