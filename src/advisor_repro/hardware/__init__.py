"""The hardware side of the paper: one 16 GB free-tier GPU per segment (a P100, then a T4).

`preflight` probes the device (name, compute capability, VRAM, arch list, a real matmul and an
NF4 matmul) and decides dtype and backend; `projection` projects every stage's time onto a
named GPU (`repro plan --gpu`) from the costs measured on the rehearsal (`measured_h100.toml`)
and the datasheet ratios (`gpus.toml`).
"""
