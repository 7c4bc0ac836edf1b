"""Errors that reach the user: each names the problem and the fix, and carries an exit code.

The exit codes are a documented contract (README, "Exit codes"); keep the table in sync.
"""

from __future__ import annotations


class ReproError(Exception):
    """A refusal the user can act on. `problem` says what is wrong, `fix` what to do."""

    exit_code = 1

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.problem}\n  fix: {self.fix}" if self.fix else self.problem


class ConfigError(ReproError):
    """Bad profile, unknown key, wrong type, bad --set override, bad command line."""

    exit_code = 2


class DataError(ReproError):
    """A dataset record or input file is malformed (names split/file, index/row, problem)."""

    exit_code = 3


class PreflightError(ReproError):
    """The hardware cannot run this profile (no GPU, too little VRAM, no kernels for it)."""

    exit_code = 4


class ResourceError(ReproError):
    """Not enough free disk (or another resource) for the plan, found before work starts; or
    the disk filled up during a write (the path is named; what was written before stays)."""

    exit_code = 5


class OfflineError(ReproError):
    """A model or dataset is not in the local cache and the hub cannot be reached."""

    exit_code = 6


class StageInputError(ReproError):
    """A stage's declared inputs are missing: an earlier stage has not run."""

    exit_code = 7


class BusyError(ReproError):
    """Another `repro` process holds this run directory."""

    exit_code = 8


class HandoffError(ReproError):
    """The handoff bundle is refused: a file hash, the base model, the LoRA config, the
    trainable parameter count or the data does not match, or optimizer state is present."""

    exit_code = 9


class JudgeError(ReproError):
    """The judge could not be asked: no API key in the named variable, a refused request
    (401/403/404/400), or 429 / 5xx / timeouts beyond the retries. Verdicts already paid
    for stay in the stage's cache, so the rerun resumes without paying twice."""

    exit_code = 10


class VerifyFailed(ReproError):
    """A required check of the expected ranges failed (or, with verify.strict, was skipped).
    verify/verify.json and verify.md are written first and kept: they name every check."""

    exit_code = 11


class SessionLimitReached(ReproError):
    """A training segment stopped before its session limit (train.session_limit_action =
    "pause") with a checkpoint of its last step saved. Rerunning the same command, in a new
    session, continues from that step."""

    exit_code = 12


class UnwritableError(ReproError):
    """The run directory, a stage folder or a cache cannot be written (permissions, a
    read-only mount); found before the stage touches anything."""

    exit_code = 13


class Terminated(ReproError):
    """SIGTERM (a notebook or cloud session ending, `docker stop`, a scheduler): a training
    segment saved a checkpoint of its last step and stopped. The same command resumes it."""

    exit_code = 14


class PrerequisitesMissing(ReproError):
    """Several prerequisites of a multi-stage command (`repro all`) are missing: API keys,
    models not in the cache while offline, disk for the whole plan, a segment longer than its
    session. Found before the first stage runs, every one named with its fix; nothing is
    written. A single missing prerequisite exits with its own code instead."""

    exit_code = 16


# Not an error: `repro verify` ran and wrote its verdict, and the verdict is PARTIAL. A script
# that reads 0 as "reproduced" must not get 0 over skipped required checks.
VERIFY_PARTIAL = 15

EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (a bug: please report it with the log)",
    ConfigError.exit_code: "configuration or command-line error",
    DataError.exit_code: "malformed dataset or input file",
    PreflightError.exit_code: "hardware refused by preflight",
    ResourceError.exit_code: "not enough disk for the plan, or the disk filled up during a "
    "write (the path is named)",
    OfflineError.exit_code: "model or dataset missing from the cache while offline",
    StageInputError.exit_code: "an earlier stage's outputs are missing",
    BusyError.exit_code: "another repro process is using this run directory",
    HandoffError.exit_code: "the handoff bundle failed verification (the check is named)",
    JudgeError.exit_code: "the judge could not be asked (key, refusal, or retries spent)",
    VerifyFailed.exit_code: "a required check against the paper failed (see verify/verify.md)",
    SessionLimitReached.exit_code: "training paused at the session limit, checkpoint saved: "
    "rerun in a new session to continue",
    UnwritableError.exit_code: "the run directory or a cache is not writable (the path is named)",
    Terminated.exit_code: "stopped by SIGTERM; a training segment saved a checkpoint: rerun the "
    "same command to resume",
    PrerequisitesMissing.exit_code: "several prerequisites of `repro all` are missing, found "
    "before the first stage ran (each is named with its fix; nothing was written)",
    VERIFY_PARTIAL: "repro verify: nothing failed, but some of the paper's required checks were "
    "skipped (PARTIAL: n of m ran); --strict makes this 11",
    130: "interrupted (Ctrl-C); finished work is kept",
}
