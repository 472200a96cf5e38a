"""Ctrl-C during a traced fit: never lost inside a garbage-collection callback.

Python prints and drops an exception raised in a gc callback (JAX registers one), so the
KeyboardInterrupt of a Ctrl-C that lands there vanishes and the run goes on. While a fit
records, :class:`CtrlC` replaces Python's default handler: a Ctrl-C inside a gc callback is
kept (``pending``) and raised by the trace at the step's end; anywhere else it raises at once,
as usual, also after a fit that raised before the trace could put the default back.
"""

from __future__ import annotations

import gc
import signal
import threading


class CtrlC:
    def __init__(self):
        self.pending = False
        self._hooks = ()
        self._saved = None

    def catch(self) -> None:
        self.pending = False
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGINT)
        original = getattr(current, "kclf_saved", current)  # left by a fit that raised
        if original is not signal.default_int_handler:
            return  # someone else handles Ctrl-C
        gc.callbacks[:] = [cb for cb in gc.callbacks if not getattr(cb, "kclf_gc", False)]
        in_gc = [False]

        def gc_start(phase, info):
            if phase == "start":
                in_gc[0] = True

        def gc_stop(phase, info):
            if phase == "stop":
                in_gc[0] = False

        def handler(signum, frame):
            if in_gc[0] and not self.pending:
                self.pending = True  # raised at the step's end
                return
            raise KeyboardInterrupt

        gc_start.kclf_gc = gc_stop.kclf_gc = True
        handler.kclf_saved = original
        gc.callbacks.insert(0, gc_start)  # first to see a collection start, last to see it end
        gc.callbacks.append(gc_stop)
        self._hooks = (gc_start, gc_stop)
        signal.signal(signal.SIGINT, handler)
        self._saved = original

    def release(self) -> None:
        for hook in self._hooks:
            if hook in gc.callbacks:
                gc.callbacks.remove(hook)
        self._hooks = ()
        if self._saved is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._saved)
        self._saved = None
