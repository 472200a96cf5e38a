"""The training trace: what each optimizer step computed and applied, recorded step by step.

    callback.py   TrainingTrace, the Keras callback a user passes to fit
    hooks.py      what it adds to the model's train step: the rings the step writes into
    device.py     writing a ring inside the step and reading it between steps, per backend
    store.py      the host side without Keras: which variables, which steps, the records
    keras_api.py  every private Keras name the trace (and the demos' capture) relies on
    interrupt.py  Ctrl-C: a traced fit stops at a step's end, and no Ctrl-C is lost

Importing this package imports nothing; the public name is ``kclf.callbacks.TrainingTrace``.
"""
