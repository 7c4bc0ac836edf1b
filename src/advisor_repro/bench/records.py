"""The shapes of the training benches' records (runs/bench/train.json, train-lengths.json): the
worker writes them, the parent adds comparisons and utilisation, `markdown` and
bench/utilisation.py read them. TypedDicts: the records are the JSON written, key for key."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from advisor_repro.hardware.utilisation import Utilisation
from advisor_repro.training.checkpointing import Layers


class Device(TypedDict):
    """The GPU a worker measured on (the CPU: name "cpu", no capability, no size)."""
    name: str
    capability: str | None  # "9.0"
    total_gib: float | None


# ---- `repro bench train` (the three paths at seq 2048) ---------------------------------------
class TrainSettings(TypedDict):
    """What every path of one run measured with (the record's "settings")."""
    micro_batches: list[int]
    steps: int  # timed steps per shape
    warmup: int  # untimed steps before them
    dtype: str  # "fp16" or "bf16"
    budget_gib: float  # per-process VRAM cap
    seq: int
    unsloth_checkpointing: str


class TrainSpec(TrainSettings):
    """The settings and the whole config, handed to each path's worker as JSON."""
    config: dict[str, Any]  # Config.to_dict(): the profile as resolved


class ShapeRow(TypedDict):
    """One path at one micro-batch; an out-of-memory run has only its peaks."""
    oom: bool
    tokens_per_s: NotRequired[float]
    step_seconds: NotRequired[list[float]]
    peak_allocated_gib: float
    peak_reserved_gib: float
    nvml_used_gib: float | None
    utilisation: NotRequired[Utilisation | None]  # added by the parent


class PathResult(TypedDict):
    """What one path's worker measured: every shape, on one loaded model."""
    path: str  # "package", "unsloth" or "hf"
    backend: str
    trainable: int
    params: int  # dense parameters a token passes through
    load_seconds: float
    vram: dict[str, float | None]  # VramCap.train_json(): device_total_gib, cap_gib
    shapes: dict[str, ShapeRow]  # by micro-batch, "2" and "4"
    device: Device
    versions: dict[str, str | None]


class Ratio(TypedDict):
    """(a)'s tokens/s over (b)'s or (c)'s at one micro-batch, against its target."""
    value: float | None  # None: a side missing or out of memory
    target: float
    ok: bool | None


class TrainRecord(TypedDict):
    what: str
    base: str  # the random-weight base's folder
    base_seconds: float
    settings: TrainSettings
    results: dict[str, PathResult]  # by path name
    ratios: dict[str, Ratio]  # "a/b mb2", ...
    reserved_targets_gib: dict[int, float]  # by micro-batch
    ratio_targets: dict[str, float]  # "a/b", "a/c"


# ---- `repro bench train --mode lengths` ------------------------------------------------------
class LengthsSpec(TypedDict):
    """What the parent hands the lengths worker as JSON."""
    config: dict[str, Any]  # Config.to_dict(): the profile as resolved
    train_text: str  # the run's data/train_text.jsonl
    splits: list[str]  # --splits items, the first the reference
    steps: int  # optimizer steps per segment and split, the first untimed
    dtype: str
    budget_gib: float
    segments: list[str]
    seen: bool  # also measure each split again on the sequences it has met


class StepRow(TypedDict):
    """One optimizer step as the worker's Trainer callback logged it."""
    step: int
    loss: float
    grad_norm: float
    tokens: int  # non-padding tokens of the step
    seconds: float


class Checkpointing(Layers):
    """The decision, and the layers a callback saw checkpointed during the run."""
    in_force: list[int] | None  # None: every layer as configured


class SeenRow(TypedDict):
    """The same measured run once more, every shape met before."""
    step_s: float | None
    tokens_per_s: float | None
    peak_reserved_gib: float | None
    losses: list[float]
    utilisation: NotRequired[Utilisation | None]  # added by the parent


class LengthsRun(TypedDict):
    """One segment at one split: timings, memory, losses."""
    micro_batch: int
    grad_accum: int
    effective_batch: int
    choice: dict[str, Any]  # microbatch's record of how the split was chosen
    oom: bool
    checkpointing: Checkpointing
    sample_longest_tokens: int
    step_order: str
    pad_to_multiple_of: int
    padding_free: bool
    step_s: float | None  # mean over the steps after the first
    tokens_per_s: float | None  # non-padding tokens over those steps
    peak_reserved_gib: float | None  # None on the CPU
    peak_allocated_gib: float | None
    budget_gib: float
    padded_share: float
    losses: list[float]
    grad_norms: list[float]
    steps: list[StepRow]
    seen: NotRequired[SeenRow]  # on a GPU, unless --no-seen or out of memory
    utilisation: NotRequired[Utilisation | None]  # added by the parent


class WarmupRun(TypedDict):
    """The untimed run before a measured one (GPU only)."""
    micro_batch: int
    step_s: float | None


class DataLengths(TypedDict):
    conversations: int
    longest_tokens: int
    mean_tokens: float


class ComparisonOk(TypedDict):
    step_ratio: bool | None
    loss: bool | None
    memory: bool | None  # None on the CPU: no peak measured


class Comparison(TypedDict):
    """One split against the first, in one segment."""
    step_ratio: float | None  # s / step, this over the first, new lengths
    step_ratio_seen: float | None
    loss_diff_max: float | None
    peak_reserved_gib: float | None
    budget_gib: float
    ok: ComparisonOk


class LayerPair(TypedDict):
    stage: str
    left_out: int  # layers not checkpointed
    tokens: int  # the sample's longest sequence
    gib_per_layer_token: float


class LayerCalibration(TypedDict):
    gib_per_layer_token: float  # the largest of the pairs
    pairs: list[LayerPair]


class LengthsRecord(TypedDict):
    what: str
    device: Device
    dtype: str
    budget_gib: float
    vram: dict[str, float | None]  # VramCap.train_json(): device_total_gib, cap_gib
    params: int
    gradient_checkpointing: bool
    steps: int
    backend: str
    data: DataLengths
    splits: list[str]
    runs: dict[str, dict[str, LengthsRun]]  # by segment, then split
    warmup: dict[str, dict[str, WarmupRun]]
    targets: dict[str, float]
    versions: dict[str, str | None]
    comparison: NotRequired[dict[str, Comparison]]  # added by the parent
    layer_calibration: NotRequired[LayerCalibration | None]
