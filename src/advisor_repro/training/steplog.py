"""Trainer callbacks of a training run: the per-step log and the session-limit guard.

StepLog appends one JSON line to steps.jsonl per optimizer step, as it happens (flushed, so a
kill -9 loses at most the step in flight): step, epoch, loss, lr (the rate used in that step),
grad_norm, tokens (non-padding tokens of the step), elapsed (seconds of training in this
segment, across resumes) and mem (peak GPU memory during the step from torch and NVML, or the
process RSS on CPU). SessionGuard projects the segment's wall-clock after the first steps and
warns, or stops cleanly before the session limit, as the profile says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from advisor_repro.hardware.gpu import GIB
from advisor_repro.training import segments
from advisor_repro.training.checkpoints import rotate_checkpoints

PROJECT_AFTER = 3  # optimizer steps measured before the wall-clock projection


# ---- memory --------------------------------------------------------------------------------
class MemoryProbe:
    """Peak memory per step; `peak` keeps the maximum of every field over the whole run."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak: dict[str, float] = {}
        self._nvml = _nvml_handle() if device == "cuda" else None

    def step(self) -> dict[str, float]:
        if self.device == "cuda":
            import torch

            mem = {
                "cuda_allocated_gib": torch.cuda.max_memory_allocated() / GIB,
                "cuda_reserved_gib": torch.cuda.max_memory_reserved() / GIB,
            }
            torch.cuda.reset_peak_memory_stats()
            if self._nvml is not None:
                import pynvml

                mem["nvml_used_gib"] = pynvml.nvmlDeviceGetMemoryInfo(self._nvml).used / GIB
        else:
            mem = _rss()
        mem = {k: round(v, 3) for k, v in mem.items()}
        for k, v in mem.items():
            self.peak[k] = max(self.peak.get(k, 0.0), v)
        return mem


def _nvml_handle() -> Any:
    """NVML's view of the device (all processes): what the paper's 11.4-12.1 GB figures are."""
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
    except Exception:  # no NVML (a container without the driver library): torch figures only
        return None


def _rss() -> dict[str, float]:
    """Resident and peak-resident memory of this process, from /proc (Linux)."""
    fields = {"VmRSS": "rss_gib", "VmHWM": "rss_peak_gib"}
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in fields:
                out[fields[key]] = int(value.split()[0]) * 1024 / GIB
    except OSError:
        import resource

        out["rss_peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    return out


# ---- steps.jsonl -----------------------------------------------------------------------------
class StepLog(TrainerCallback):
    """Appends a row per optimizer step to `path`; `rows` holds every row of the segment."""

    def __init__(self, path: Path, rows: list[segments.StepRow], probe: MemoryProbe,
                 say: Callable[[str], None] = print) -> None:
        self.path = Path(path)
        self.rows = rows  # rows kept from before a resume, then this process's
        self.probe = probe
        self.say = say
        self.elapsed0 = rows[-1]["elapsed"] if rows else 0.0
        self.tokens_seen = sum(r["tokens"] for r in rows)
        self.t0 = time.monotonic()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.t0 = time.monotonic()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None,
               **kwargs: Any) -> None:
        if not logs or "loss" not in logs:
            return  # the end-of-training record, not a step
        seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        row: segments.StepRow = {
            "step": state.global_step,
            "epoch": round(float(state.epoch or 0.0), 4),
            "loss": float(logs["loss"]),
            "lr": float(logs.get("learning_rate", 0.0)),
            "grad_norm": _float_or_none(logs.get("grad_norm")),
            "tokens": seen - self.tokens_seen,
            "elapsed": round(self.elapsed0 + time.monotonic() - self.t0, 3),
            "mem": self.probe.step(),
        }
        self.tokens_seen = seen
        self.rows.append(row)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
            fh.flush()


def _float_or_none(x: Any) -> float | None:
    return None if x is None else float(x)


def kept_rows(path: Path, upto_step: int) -> list[segments.StepRow]:
    """The rows of an interrupted run up to the checkpoint it resumes from; later ones will be
    trained again. A torn last line (the kill came mid-write) is dropped."""
    if not Path(path).is_file():
        return []
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("step", 0) <= upto_step:
            rows.append(row)
    return rows


# ---- session limit -----------------------------------------------------------------------------
class SessionGuard(TrainerCallback):
    """Projects the session's wall-clock after PROJECT_AFTER steps; with action "stop" or
    "pause", ends training before the limit so the adapter ("stop") or a checkpoint to continue
    from in the next session ("pause") is saved inside this one."""

    def __init__(self, limit_hours: float, action: str, process_start: float,
                 save_margin_s: float, say: Callable[[str], None] = print) -> None:
        self.limit_s = limit_hours * 3600
        self.action = action
        self.process_start = process_start
        self.save_margin_s = save_margin_s
        self.say = say
        self.projected_s: float | None = None
        self.stopped = False
        self.warning: str | None = None
        self._first_step: int | None = None
        self._train_start = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._train_start = time.monotonic() - self.process_start

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._first_step is None:
            self._first_step = state.global_step - 1
        now = time.monotonic() - self.process_start
        done = state.global_step - self._first_step
        per_step = (now - self._train_start) / max(done, 1)
        last = state.global_step >= state.max_steps
        if done == PROJECT_AFTER or (self.projected_s is None and last):
            total_here = done + max(state.max_steps - state.global_step, 0)
            self.projected_s = segments.project(now, done, total_here, self._train_start)
            self._check_projection(state)
        margin = min(self.save_margin_s, 0.05 * self.limit_s)  # a short limit: a short margin
        if self.action in ("stop", "pause") and state.global_step < state.max_steps and \
                segments.should_stop(now, per_step, self.limit_s, margin):
            if self.projected_s is None:
                total_here = done + state.max_steps - state.global_step
                self.projected_s = segments.project(now, done, total_here, self._train_start)
                self._check_projection(state)
            self.stopped = True
            control.should_training_stop = True
            control.should_save = self.action == "pause"  # the Trainer saves after this hook
            kept = "a checkpoint to continue from" if self.action == "pause" else "the adapter"
            self.say(f"session limit: stopping after step {state.global_step} of "
                     f"{state.max_steps} ({now / 3600:.2f} h used of "
                     f"{self.limit_s / 3600:g} h); {kept} is saved")

    def _check_projection(self, state: Any) -> None:
        hours = (self.projected_s or 0.0) / 3600
        self.say(f"projected session time: {hours:.2f} h for {state.max_steps} steps "
                 f"(limit {self.limit_s / 3600:g} h)" if self.limit_s else
                 f"projected session time: {hours:.2f} h for {state.max_steps} steps")
        if self.limit_s and (self.projected_s or 0.0) > self.limit_s:
            what = {"stop": "it will stop before the limit",
                    "pause": "it will pause before the limit (rerun in a new session)",
                    }.get(self.action, "it may be cut off")
            self.warning = (f"projected {hours:.2f} h for this segment exceeds the session limit "
                            f"of {self.limit_s / 3600:g} h: {what}")
            self.say(f"warning: {self.warning}")


# ---- SIGTERM -------------------------------------------------------------------------------------
class TerminationGuard(TrainerCallback):
    """SIGTERM (a notebook or cloud session ending, `docker stop`) asks the run to stop: at the
    end of the step in flight the Trainer saves a checkpoint of it and stops, so the same
    command resumes there. `install()` sets the handler in the training process."""

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say
        self.requested = False  # SIGTERM received
        self.stopped_at: int | None = None  # the step whose checkpoint was saved

    def install(self) -> None:
        import signal

        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.requested and self.stopped_at is None:
            self.stopped_at = state.global_step
            control.should_save = True  # the Trainer saves after this hook
            control.should_training_stop = True
            self.say(f"SIGTERM: saving checkpoint-{state.global_step} and stopping")



# ---- checkpoints kept ----------------------------------------------------------------------------
class CheckpointRotation(TrainerCallback):
    """Keeps, after every save, the checkpoints an uninterrupted run keeps: the last two regular
    ones (every `every` steps, and the last step, where the Trainer always saves) and the newest
    of any kind. A SIGTERM or a session-limit pause saves one between the regular ones; the
    Trainer's own rotation (save_total_limit) counted it as one of its two, so once the resumed
    run had saved past it the folder held other checkpoints than the uninterrupted run's (the
    crash sweep: control/checkpoints/checkpoint-1 left beside checkpoint-2). Resuming needs only
    the newest, which is always kept."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:

        rotate_checkpoints(Path(args.output_dir), self.every, state.max_steps)
