"""kclf's one way to run child processes, and its one parser of backend lists.

``kclf compare`` and ``kclf bench`` start Python children with KERAS_BACKEND set before keras
is imported. :func:`spawn` starts one in its own process group (so :func:`stop` ends it and
everything it started), :func:`run_logged` runs one to the end, logging its output, and
:func:`parse_backends` reads a ``--backends`` list the same way everywhere (exit 2 on a
name that is not a backend).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from kclf.errors import UsageError

QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2"}  # keeps TensorFlow's banners out of logs and tails


def parse_backends(spec: str, option: str = "--backends") -> list[str]:
    """"jax, torch" → ["jax", "torch"] (canonical names, once each, in order); an unknown or
    empty name is a UsageError (exit 2)."""
    from kclf.backend import BACKENDS, BackendError, validate_name

    parts = [n for n in str(spec).split(",")]
    if not any(n.strip() for n in parts):
        raise UsageError(f"{option} {spec!r} names no backend; expected a comma-separated list "
                         f"among {', '.join(BACKENDS)}".lstrip())
    try:
        names = [validate_name(n) for n in parts if n.strip()]
    except BackendError as exc:
        raise UsageError(f"{option}: {exc}" if option else str(exc)) from None
    return list(dict.fromkeys(names))


def python_env(**extra: str) -> dict[str, str]:
    """This process's environment for a Python child, plus ``extra``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for key, value in QUIET_TF.items():
        env.setdefault(key, value)
    env.update(extra)
    return env


def kclf_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kclf", *args]


def spawn(cmd: list[str], env: dict[str, str], stdout, stderr) -> subprocess.Popen:
    """Start ``cmd`` in its own process group, stdin closed."""
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """Terminate the child's whole process group, then kill it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError, AttributeError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last non-blank ``lines`` of a log file ([] when it cannot be read)."""
    try:
        text = Path(path).read_bytes()[-20000:].decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def run_logged(cmd: list[str], log_path: Path, *, env: dict[str, str] | None = None,
               forward=lambda line: False, keep: int = 15) -> tuple[int, str]:
    """Run ``cmd`` to the end, its stdout and stderr into ``log_path``; lines for which
    ``forward`` holds also go to our stderr. Returns (exit code, its last ``keep`` lines).
    Ctrl-C stops the child's whole process group."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = spawn(cmd, env or python_env(), subprocess.PIPE, subprocess.STDOUT)
        try:
            for raw in proc.stdout:
                line = raw.decode(errors="replace")
                log.write(line)
                if forward(line):
                    sys.stderr.write(line)
                    sys.stderr.flush()
            code = proc.wait()
        except BaseException:
            stop(proc)
            raise
        finally:
            proc.stdout.close()
    return code, "\n".join(tail(log_path, keep))
