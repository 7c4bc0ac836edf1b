"""The `local` judge: an open model loaded with transformers, so the replay needs no API key.

On a CUDA GPU the judge loads in 4-bit NF4 (double quant; fp16 compute below sm 8, bf16 from
sm 8), after the generation stage has freed the trained models, and is freed again when the
stage ends. The paper profile's choice is Qwen2.5-14B-Instruct: about 10 GB in NF4, which
leaves room for prompts of ~1,000 tokens inside a 14.74 GiB budget (README, "The judge").
The smoke profile judges with the smoke model itself, in fp32 on the CPU: a code-path check,
whose replies are mostly not the rubric's JSON and end as "unparseable".

Decoding is greedy at temperature 0 (sampling with the configured temperature otherwise), and
the chat template of the judge model renders the messages. Generation stops as soon as the
reply can no longer be the one JSON object the parser accepts (its first visible character is
not "{" or a code fence) or when that object has closed: the parser would reject anything
else, and a small judge's rambling then costs one token instead of the whole budget.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from advisor_repro.config import Config, Judge
from advisor_repro.judges import settings
from advisor_repro.judges.rubric import Messages


def resolve_model(cfg: Config) -> tuple[Path, str, str]:
    """(folder, revision, name) of the local judge: "" = the profile's generation base, a
    local folder, or a hub id resolved (offline when HF_HUB_OFFLINE=1) to a snapshot."""
    from advisor_repro.models import hub as models
    name = cfg.judge.local_model
    if not name:
        folder, revision = models.base_model(cfg.model, "eval")
        return folder, revision, cfg.model.eval_base
    if Path(name).is_dir():
        return Path(name), "local-folder", Path(name).name
    from huggingface_hub import constants

    folder, revision = models.resolve_hub_model(
        name, cfg.judge.local_revision, None, offline=constants.HF_HUB_OFFLINE
    )
    return folder, revision, name


def json_done(text: str) -> bool:
    """True once `text` cannot become, or has become, a complete JSON object reply."""
    body = text.lstrip()
    if not body:
        return False
    if body[0] == "`":  # a fenced reply ends with its closing fence
        return body.count("```") >= 2
    if body[0] != "{":
        return True
    depth, in_string, escaped = 0, False, False
    for ch in body:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return True
    return False


def pick_device(requested: str) -> str:
    import torch

    if requested == "cpu" or not torch.cuda.is_available():
        return "cpu"
    return "cuda"


class LocalJudge:
    def __init__(
        self, folder: Path, name: str, revision: str, jc: Judge, device: str, quant: str
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

        self.jc = jc
        self.device = device
        if quant == "auto":
            quant = "nf4" if device == "cuda" else "none"
        if device == "cuda":
            major, _ = torch.cuda.get_device_capability()
            dtype = torch.bfloat16 if major >= 8 else torch.float16
        else:
            dtype = torch.float32
        self.tok = AutoTokenizer.from_pretrained(folder)
        if quant == "nf4":
            qc = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=dtype,
            )
            where = {"": 0} if device == "cuda" else {"": "cpu"}
            self.model = AutoModelForCausalLM.from_pretrained(
                folder, quantization_config=qc, device_map=where, dtype=dtype, use_safetensors=True
            )
        else:
            self.model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, use_safetensors=True
            ).to(device)
        self.model.eval()
        self.identity: dict[str, Any] = {
            "backend": "local",
            "model": name,
            "revision": revision,
            "quant": quant,
            "dtype": str(dtype).removeprefix("torch."),
            **settings(jc),
        }

    @classmethod
    def from_config(cls, cfg: Config) -> LocalJudge:
        folder, revision, name = resolve_model(cfg)
        return cls(
            folder, name, revision, cfg.judge, pick_device(cfg.hardware.device),
            cfg.judge.local_quant,
        )

    def complete(self, messages: Messages, key: str) -> str:
        import torch

        enc = self.tok.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        from transformers import StoppingCriteria, StoppingCriteriaList

        start = enc["input_ids"].shape[1]
        tok = self.tok

        class JsonStop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                done = json_done(tok.decode(input_ids[0, start:], skip_special_tokens=True))
                return torch.full((input_ids.shape[0],), done, device=input_ids.device)

        sampling = self.jc.temperature > 0
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=self.jc.max_tokens,
                do_sample=sampling,
                temperature=self.jc.temperature if sampling else None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
                stopping_criteria=StoppingCriteriaList([JsonStop()]),
            )
        new = out[0, start:]
        return self.tok.decode(new, skip_special_tokens=True)

    def close(self) -> None:
        """Free the model so the next stage has the GPU to itself."""
        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
