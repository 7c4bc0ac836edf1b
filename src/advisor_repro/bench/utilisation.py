"""The training benches' distance to the hardware: each measured run's model and hardware
FLOPs utilisation (hardware/utilisation.py holds the formulas and the peaks), added to the
records and set out for BENCHMARKS.md. Pure: records in, records and lines out."""

from __future__ import annotations

from advisor_repro.bench.records import LengthsRecord, TrainRecord
from advisor_repro.hardware import utilisation as hw
from advisor_repro.hardware.utilisation import Utilisation


# ---- `repro bench train` (the three paths) --------------------------------------------------
def annotate_paths(record: TrainRecord) -> None:
    """Each measured shape's MFU and HFU (None on a GPU without a listed peak), in place."""
    results = record["results"]
    first = next(iter(results.values()), {}).get("device", {})
    for res in results.values():
        device = (res.get("device") or first).get("name", "")
        for row in res.get("shapes", {}).values():
            row["utilisation"] = hw.utilisation(res.get("params"), row.get("tokens_per_s"),
                                                device, checkpointing=True)


def paths_note(record: TrainRecord) -> list[str]:
    """The line under the table saying what MFU and HFU were measured against."""
    rows = [r.get("utilisation") for res in record["results"].values()
            for r in res.get("shapes", {}).values()]
    u = next((r for r in rows if r), None)
    if u is None:
        return ["", "MFU / HFU: no dense FP16/BF16 peak listed for this device "
                "(hardware/gpus.toml)."]
    note = f" ({u['note']})" if u.get("note") else ""
    return ["", f"MFU = 4 x {u['params']:,} parameters x tokens/s, HFU = 6 x (the forward "
            f"gradient checkpointing recomputes), over the {u['gpu']}'s dense FP16/BF16 peak "
            f"of {u['peak_tflops']} TFLOP/s{note}."]


# ---- `repro bench train --mode lengths` -----------------------------------------------------
def annotate_lengths(record: LengthsRecord) -> None:
    """Each run's MFU and HFU on new and on seen lengths, in place (None on the CPU or a GPU
    without a listed peak)."""
    name, ckpt = record["device"]["name"], bool(record.get("gradient_checkpointing"))
    for by_split in record["runs"].values():
        for r in by_split.values():
            share = (r.get("checkpointing") or {}).get("share", ckpt)  # partial: its share
            for row in (r, r.get("seen") or {}):
                if row:
                    row["utilisation"] = hw.utilisation(record.get("params"),
                                                        row.get("tokens_per_s"), name, share)


def lengths_table(record: LengthsRecord) -> list[str]:
    """MFU and HFU per segment and split, for BENCHMARKS.md; nothing where none was measured."""
    rows: list[str] = []
    first: Utilisation | None = None
    for stage, by_split in record["runs"].items():
        for name in record["splits"]:
            r = by_split[name]
            new, seen = r.get("utilisation") or {}, (r.get("seen") or {}).get("utilisation") or {}
            first = first or new or seen or None
            rows.append(f"| {stage} | {name}: {r['micro_batch']} x {r['grad_accum']} | "
                        f"{hw.percent(new.get('mfu'))} | {hw.percent(seen.get('mfu'))} | "
                        f"{hw.percent(new.get('hfu'))} | {hw.percent(seen.get('hfu'))} |")
    if first is None:
        return []
    recompute = ("6 x (with the forward gradient checkpointing recomputes; 4 + 2 x the "
                 "checkpointed share of the layers where only some are)"
                 if first["checkpointing"] else "4 x (no checkpointing: nothing recomputed)")
    note = f" ({first['note']})" if first.get("note") else ""
    return ["", f"Distance to the hardware: MFU = 4 x {first['params']:,} parameters x real "
            f"tokens/s, HFU = {recompute}, over the {first['gpu']}'s dense FP16/BF16 peak of "
            f"{first['peak_tflops']} TFLOP/s{note}.", "",
            "| segment | split | MFU, new lengths | MFU, seen | HFU, new lengths | HFU, seen |",
            "|---|---|---:|---:|---:|---:|", *rows]
