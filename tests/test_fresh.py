"""advisor_repro.fresh: a module in a fresh interpreter, its output kept or shown, a timeout that
kills it, and a SIGTERM to this process passed on to it instead of ending this one."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from advisor_repro.fresh import run_module

SLEEP = ["-n", "1", "-r", "1", "import time; time.sleep(30)"]  # python -m timeit: 30 s


def test_a_failing_module_returns_its_code_and_its_error_text():
    done = run_module("json.tool", ["/nonexistent/file.json"], capture=True)
    assert done.returncode != 0
    assert "No such file or directory" in done.stderr


def test_past_the_timeout_the_child_is_killed_and_the_timeout_raised():
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_module("timeit", SLEEP, timeout_s=1, capture=True)
    assert time.monotonic() - t0 < 15  # killed, not waited for


def test_a_sigterm_here_goes_to_the_child_and_this_process_lives_on():
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    previous = signal.getsignal(signal.SIGTERM)
    done = run_module("timeit", SLEEP, capture=True, forward_sigterm=True)
    assert done.returncode == -signal.SIGTERM  # the child got it
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back
