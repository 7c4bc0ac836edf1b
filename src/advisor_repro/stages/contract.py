"""The stage contract that the pipeline and every stage module share.

A stage is data (`Stage`): its name, what it reads (`needs`, `optional`), which config sections
change its result, an optional `check(cfg, ctx)` run before anything is written, and
`run(cfg, ctx) -> StageResult`. `StageContext` is all a running stage
sees: its own folder and its declared inputs. `caches(cfg)` names the caches outside the run
directory it would write into. Kept apart from `pipeline` so that stages import
the contract, never the runner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from advisor_repro.config import Config
from advisor_repro.errors import ReproError, StageInputError

if TYPE_CHECKING:
    from advisor_repro.hardware.projection import GpuWork


Figure = int | float | str | bool | None  # one key figure, as `repro status` prints it


@dataclass
class StageResult:
    figures: dict[str, Figure] = field(default_factory=dict)  # key figures for `repro status`
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Estimate:
    seconds: float  # wall-clock on the profile's hardware
    disk_bytes: int = 0  # new disk use (run directory + caches)
    vram_gib: float = 0.0  # peak GPU memory


@dataclass
class StageContext:
    """What a running stage sees: its own folder and its declared inputs."""

    name: str
    run_dir: Path
    needs: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # new disk the whole registered plan writes (sum of the stages' estimates), filled in by
    # the runner: preflight checks free disk against it without importing the registry
    plan_disk_bytes: int = 0

    @property
    def out(self) -> Path:
        return self.run_dir / self.name

    def input(self, rel: str) -> Path:
        """Path of a declared input `stage/file`; refuses undeclared or missing ones."""
        if rel not in self.needs and rel not in self.optional:
            raise RuntimeError(f"stage {self.name} reads {rel} but does not declare it in needs")
        path = self.run_dir / rel
        if not path.exists():
            stage = rel.split("/", 1)[0]
            raise StageInputError(
                f"stage '{self.name}' needs {rel}, which is missing in {self.run_dir}",
                f"run the earlier stage first: repro {stage} --run-dir {self.run_dir}",
            )
        return path


@dataclass(frozen=True)
class Stage:
    name: str
    summary: str  # one line for `repro --help`, `status` and `plan`
    run: Callable[[Config, StageContext], StageResult]
    needs: tuple[str, ...] = ()  # "stage/relative/path" files read from earlier stages
    # read when present (verify, report): hashed like needs, but a missing one is no error
    optional: tuple[str, ...] = ()
    config: tuple[str, ...] = ()  # config sections whose values change the result
    external: Callable[[Config], dict[str, str]] | None = None  # hashes of outside inputs
    estimate: Callable[[Config], Estimate] | None = None
    # checks that need no work (config consistency, a backend or key available): the runner
    # calls it before the stage's folder is touched, so its refusal changes nothing
    check: Callable[[Config, StageContext], None] | None = None
    # the caches outside the run directory this run would write into (a model converted or
    # downloaded on first use), by the variable that moves each ({"HF_HOME": path}): the
    # runner refuses an unwritable one before the folder is touched
    caches: Callable[[Config], dict[str, Path]] | None = None
    # what the stage will need that the config alone shows (an API key, a model in the cache
    # while offline), returned rather than raised: a multi-stage command gathers every
    # stage's before its first stage runs, so that one refusal names them all
    prerequisites: Callable[[Config], list[ReproError]] | None = None
    # its GPU work, for `repro plan --gpu` to project onto another GPU (none: not GPU-bound)
    gpu_work: GpuWork | None = None
