"""The training trace's public name: ``from kclf.callbacks import TrainingTrace``.

It lives in kclf/trace/callback.py, with the rest of the trace in kclf/trace/.
"""

from kclf.trace.callback import TrainingTrace

__all__ = ["TrainingTrace"]
