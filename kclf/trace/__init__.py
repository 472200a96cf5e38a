"""The training trace: what each optimizer step computed and applied, recorded step by step.

    callback.py   TrainingTrace, the Keras callback a user passes to fit (``kclf.callbacks``)
    hooks.py      what it adds to the model's train step: the rings each step writes into
    device.py     a ring written inside the step and read between steps, per backend
    store.py      the host side, without Keras: which steps a copy holds, the records
    variables.py  which variables a name stands for, without Keras
    refusals.py   what it cannot record, refused in one line before anything changes
    keras_api.py  every private Keras name kclf relies on, and the versions it accepts
    interrupt.py  Ctrl-C: a traced fit stops at a step's end, and no Ctrl-C is lost
    states.py     StepStates: the whole training state before chosen steps, for a replay

Importing this package imports nothing.
"""
