"""A module of this package run in a fresh Python interpreter, the one way the stages start
one: training (`python -m advisor_repro.training.process`) and the handoff's load check
(`python -m advisor_repro.training.handoff`). Nothing in this process's memory reaches the
child; it dies with `repro` (Linux: PR_SET_PDEATHSIG), so a killed run never leaves an orphan
writing into the run directory; optionally a SIGTERM to `repro` is passed on to it (training
checkpoints and exits 14) instead of killing `repro`, whose death would SIGKILL it.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Finished:
    returncode: int  # negative: killed by that signal
    stderr: str  # captured only with capture=True


def run_module(module: str, args: list[str], *, env: dict[str, str] | None = None,
               timeout_s: float | None = None, capture: bool = False,
               forward_sigterm: bool = False) -> Finished:
    """Run `python -m module args...` and wait for it. `capture`: its output is kept (stderr
    returned) instead of shown; `timeout_s`: past it the child is killed and
    subprocess.TimeoutExpired raised."""
    pipe = subprocess.PIPE if capture else None
    proc = subprocess.Popen([sys.executable, "-m", module, *args], env=env, stdout=pipe,
                            stderr=pipe, text=True, preexec_fn=die_with_parent)
    with _sigterm_passed_to(proc) if forward_sigterm else contextlib.nullcontext():
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    return Finished(proc.returncode, err or "")


@contextlib.contextmanager
def _sigterm_passed_to(proc: subprocess.Popen) -> Iterator[None]:
    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)

    try:
        previous = signal.signal(signal.SIGTERM, forward)
    except ValueError:  # not the main thread: no handler can be set, wait as before
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def die_with_parent() -> None:
    """Linux: the child gets SIGKILL when `repro` dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
