"""The training process's environment (training/process.py::child_env)."""

import os
import subprocess
import sys

from advisor_repro.training.process import child_env

# PEFT's own save of a LoRA config: target_modules goes from a set to a list in the file
SAVE = """
import sys
from peft import LoraConfig
LoraConfig(r=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                 "up_proj", "down_proj"]).save_pretrained(sys.argv[1])
"""


def _saved(env, out):
    subprocess.run([sys.executable, "-c", SAVE, str(out)], env=env, check=True, timeout=300)
    return (out / "adapter_config.json").read_bytes()


def test_two_training_processes_write_the_same_adapter_config_bytes(tmp_path, monkeypatch):
    # the problem: two processes with different hash seeds write the modules in other orders
    seeded = [_saved({**os.environ, "PYTHONHASHSEED": s}, tmp_path / s) for s in ("1", "2")]
    assert seeded[0] != seeded[1]
    # whatever seed `repro`'s own environment holds, the training processes agree
    ours = []
    for s in ("1", "2"):
        monkeypatch.setenv("PYTHONHASHSEED", s)
        ours.append(_saved(child_env(cpu=True), tmp_path / f"child-{s}"))
    assert ours[0] == ours[1]
