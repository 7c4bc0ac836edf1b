"""A made-up release folder in the formats of the paper's released evaluation files
(PAPER.md "Released artifacts"), for the import-release tests. The numbers are invented; the
file names are deliberately not the released ones, so recognition must go by header and keys.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

N = 6  # prompts
CAP = 16  # token cap of the made-up outputs
DRAW = [151, 127, 77, 43, 261, 68]  # the paper's first dataset indices
OUTPUT_HEADER = ["sample_id", "dataset_index", "prompt", "response", "generation_time_sec",
                 "response_char_length", "response_token_count", "was_truncated"]
JUDGE_HEADER = ["sample_id", "domain_a", "help_a", "domain_b", "help_b", "preferred_slot",
                "note_a", "note_b"]


def prompts() -> list[dict]:
    return [{"sample_id": i + 1, "dataset_index": DRAW[i], "prompt": f"Question {i + 1}, please?"}
            for i in range(N)]


def outputs(model: str) -> list[dict]:
    rng = random.Random(model)
    rows = []
    for p in prompts():
        tokens = CAP if rng.random() < 0.6 else rng.randint(3, CAP - 1)
        text = (f"{model} answer to {p['sample_id']}: \"quoted\", with commas,\n"
                f"and a second line.{' More.' * (p['sample_id'] % 3)}")
        rows.append({**p, "response": text, "generation_time_sec": round(rng.uniform(5, 25), 6),
                     "response_char_length": len(text), "response_token_count": tokens,
                     "was_truncated": tokens >= CAP})
    return rows


def judge() -> list[dict]:
    rng = random.Random(7)
    return [{"sample_id": i + 1, "domain_a": rng.randint(0, 3), "help_a": rng.randint(0, 3),
             "domain_b": rng.randint(0, 3), "help_b": rng.randint(0, 3),
             "preferred_slot": rng.choice(["a", "b", "tie"]), "note_a": "ok, fine",
             "note_b": "truncated"} for i in range(N)]


def bertscore(n: int = N) -> dict:
    rng = random.Random(3)
    return {"token_cap": CAP, "bertscore_model": "roberta-large", "rescale_with_baseline": True,
            "f1_per_item_base": [rng.uniform(-0.05, 0.2) for _ in range(n)],
            "f1_per_item_lora": [rng.uniform(0.0, 0.3) for _ in range(n)],
            "precision_mean_base": 0.2072, "recall_mean_base": -0.0154,
            "precision_mean_lora": 0.2690, "recall_mean_lora": 0.0496}


def write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


def make(folder: Path) -> Path:
    """prompts (a.csv), base/FT outputs, judge scores (b.csv), BERTScore (c.txt), plus a README
    and a binary file that must be ignored."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "a.csv", ["sample_id", "dataset_index", "prompt"], prompts())
    write_csv(folder / "base_model_outputs.csv", OUTPUT_HEADER, outputs("base"))
    write_csv(folder / "lora_model_outputs.csv", OUTPUT_HEADER, outputs("lora"))
    write_csv(folder / "b.csv", JUDGE_HEADER, judge())
    (folder / "c.txt").write_text(json.dumps(bertscore(), indent=2), encoding="utf-8")
    (folder / "README.md").write_text("# Released evaluation files\n", encoding="utf-8")
    (folder / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    return folder
