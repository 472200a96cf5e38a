"""Ctrl-C while kclf runs: never lost, and during a traced fit raised at a step's end.

Two places where a plain KeyboardInterrupt goes wrong:

- Python prints and drops an exception raised in a garbage-collection callback (JAX
  registers one), so a Ctrl-C that lands there vanishes and the run goes on.
- JAX's fit donates the training state to each step and keeps the new state only after the
  step returns; a KeyboardInterrupt in between leaves the model and the trace's rings as
  deleted arrays, and Keras purges the model's variables until the epoch's end.

While kclf holds Ctrl-C (:func:`held` for a whole ``kclf`` command, :class:`CtrlC` for a
traced fit), its handler keeps a Ctrl-C that lands in a gc callback and delivers it again,
from a helper thread, once the collection is over; keeps the first Ctrl-C during a traced fit
for the trace to raise at the step's end (``presses``), when what the step recorded is
readable; and raises at once anywhere else, also on a second Ctrl-C. A fit that raised is
over (Keras tells its callbacks nothing): its frame is no longer on the stack, so the
handler raises at once, and the next hold drops the trace's.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
from contextlib import contextmanager


class _Guard:
    """The process's SIGINT handler while kclf holds it (one per process: ``GUARD``)."""

    def __init__(self):
        self.holders = 0
        self.presses = 0  # Ctrl-Cs received and not raised yet
        self.unseen = False  # a KeyboardInterrupt raised for a Ctrl-C that no kclf code caught yet
        self.fits: dict[CtrlC, object] = {}  # a traced fit's hold -> the frame of its fit
        self._saved = None
        self._in_gc = False
        self._redelivered = False
        self._wake = threading.Event()
        self._watcher = None
        self.handler = self._handle  # one bound method: what signal.getsignal returns while held

    # -- holding ---------------------------------------------------------------------------
    def hold(self) -> bool:
        """Take SIGINT unless someone else handles it; False when not taken."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._drop_ended_fits(sys._getframe())
        current = signal.getsignal(signal.SIGINT)
        if self.holders == 0:
            if current is not signal.default_int_handler:
                return False
            self._saved, self.presses, self.unseen = current, 0, False
            self._add_gc_hooks()
            signal.signal(signal.SIGINT, self.handler)
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._redeliver, name="kclf-ctrl-c", daemon=True)
                self._watcher.start()
        elif current is not self.handler:
            return False
        self.holders += 1
        return True

    def release(self) -> bool:
        """Give one hold back; the last one puts the saved handler back. Returns whether a
        Ctrl-C is still waiting to be raised (then the caller raises it)."""
        self.holders -= 1
        if self.holders > 0:
            return False
        if signal.getsignal(signal.SIGINT) is self.handler:
            signal.signal(signal.SIGINT, self._saved)
        gc.callbacks[:] = [cb for cb in gc.callbacks if not getattr(cb, "kclf_gc", False)]
        pending, self.presses = self.presses > 0, 0
        return pending

    def _drop_ended_fits(self, frame) -> None:
        """The holds of traced fits that raised (they are not on the stack): Keras told
        their traces nothing, so they hold Ctrl-C still."""
        if not self.fits or self.presses:
            return  # a waiting Ctrl-C is raised first (at the next collection's end)
        running = set()
        while frame is not None:
            running.add(id(frame))
            frame = frame.f_back
        for hold, fit in list(self.fits.items()):
            if id(fit) not in running:
                del self.fits[hold]
                hold.forget()
                self.release()

    # -- the handler -----------------------------------------------------------------------
    def _handle(self, signum, frame):
        if self._redelivered:
            self._redelivered = False
            if not self.presses:
                return  # raised meanwhile, at a step's end
        else:
            self.presses += 1
        if self._in_gc:
            return  # delivered again when the collection is over
        if self.presses == 1 and self._in_traced_fit(frame):
            return  # the trace raises it at the step's end
        self.presses, self.unseen = 0, True
        raise KeyboardInterrupt

    def _in_traced_fit(self, frame) -> bool:
        fits = {id(fit) for fit in self.fits.values()}  # alive: the guard holds them
        while fits and frame is not None:
            if id(frame) in fits:
                return True
            frame = frame.f_back
        return False

    # -- garbage collection ----------------------------------------------------------------
    def _add_gc_hooks(self) -> None:
        def gc_start(phase, info):
            if phase == "start":
                self._in_gc = True
                if gc.callbacks[-1] is not gc_stop:  # a library added one after ours (JAX's)
                    gc.callbacks.remove(gc_stop)
                    gc.callbacks.append(gc_stop)

        def gc_stop(phase, info):
            if phase == "stop":
                if self.presses:
                    self._wake.set()
                self._in_gc = False

        gc_start.kclf_gc = gc_stop.kclf_gc = True
        gc.callbacks[:] = [cb for cb in gc.callbacks if not getattr(cb, "kclf_gc", False)]
        gc.callbacks.insert(0, gc_start)  # first to see a collection start, last to see it end
        gc.callbacks.append(gc_stop)

    def _redeliver(self) -> None:
        main = threading.main_thread().ident
        while True:
            self._wake.wait()
            self._wake.clear()
            if self.holders and self.presses:
                self._redelivered = True
                if hasattr(signal, "pthread_kill"):
                    signal.pthread_kill(main, signal.SIGINT)  # also wakes a sleeping main thread
                else:
                    import _thread

                    _thread.interrupt_main()


GUARD = _Guard()


@contextmanager
def held():
    """Hold Ctrl-C for a whole command: never dropped in a gc callback. A Ctrl-C still
    waiting at the end is raised there, and so is one whose KeyboardInterrupt some library's
    ``except`` caught on its way (see :func:`lost`)."""
    holding = GUARD.hold()
    try:
        yield
    except KeyboardInterrupt:
        caught()
        raise
    finally:
        waiting = holding and GUARD.release()
    if waiting or lost():
        caught()
        raise KeyboardInterrupt


def caught() -> None:
    """kclf caught the KeyboardInterrupt of a Ctrl-C: it reached its handler."""
    GUARD.unseen = False


def lost() -> bool:
    """Whether the KeyboardInterrupt raised for a Ctrl-C never reached kclf's handler (a
    library's bare ``except`` caught it): the user pressed Ctrl-C all the same."""
    return GUARD.unseen


class CtrlC:
    """One traced fit's hold on Ctrl-C: the first Ctrl-C waits for the trace, which raises
    it at the step's end (``pending``)."""

    def __init__(self):
        self._holding = False

    def catch(self, fit_codes) -> None:
        """The fit starts: the frame running one of ``fit_codes`` (the code objects of the
        model's fit methods) is the fit; while it is on the stack the fit runs (a fit that
        raised is not)."""
        if not self._holding:
            self._holding = GUARD.hold()
        fit = sys._getframe()
        while fit is not None and fit.f_code not in fit_codes:
            fit = fit.f_back
        if self._holding and fit is not None:
            GUARD.fits[self] = fit

    @property
    def pending(self) -> bool:
        return GUARD.presses > 0 and self._holding

    def take(self) -> None:
        """The trace raises the waiting Ctrl-C now."""
        GUARD.presses, GUARD.unseen = 0, True

    def forget(self) -> None:
        """The guard dropped this hold: its fit raised long ago."""
        self._holding = False

    def release(self) -> bool:
        """The fit is over; True when a Ctrl-C waits to be raised (the caller raises it)."""
        if not self._holding:
            return False
        self._holding = False
        GUARD.fits.pop(self, None)
        waiting = GUARD.presses > 0 and not GUARD.fits
        if waiting:
            GUARD.presses = 0
        if GUARD.release() or waiting:
            GUARD.unseen = True  # the caller raises it
            return True
        return False
