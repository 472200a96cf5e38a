"""kclf's exceptions: each message is one line naming what was wrong and what was expected."""


class KclfError(Exception):
    """Base class for errors the CLI reports as one line on stderr."""

    exit_code = 1


class UnknownExperiment(KclfError):
    exit_code = 2


class UsageError(KclfError):
    """An option that does not fit the command (exit 2, like argparse's own errors)."""

    exit_code = 2


class TrainingDiverged(KclfError):
    """Loss or a gradient became NaN/inf; the trace up to that step is kept."""

    exit_code = 3
