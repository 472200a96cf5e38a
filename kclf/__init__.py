"""kclf: check how classifiers train in Keras 3, step by step, on JAX, TensorFlow and PyTorch.

Importing kclf does not import keras: choose the backend first with
``kclf.backend.select_backend`` (or KERAS_BACKEND), then use kclf.models,
kclf.callbacks and kclf.runner.
"""

__version__ = "0.1.0"
