"""The report's closing sections: environment and pinned versions (manifest.json, the hub pins
of artifacts/release.toml beside what `repro fetch` resolved), and the deviations ledger
(repro/deviations.toml)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advisor_repro.expected import fmt
from advisor_repro.report.render import Folded, NotRun, Pre, Section, Table, Text

REPO = Path(__file__).resolve().parents[3]
DEVIATIONS = REPO / "repro" / "deviations.toml"
RELEASE = REPO / "artifacts" / "release.toml"


def environment_section(
    get: Callable[[str], Any], manifest: dict[str, Any], fetched: dict[str, Any]
) -> Section:
    """Versions, hardware and configuration from manifest.json; hub pins from
    artifacts/release.toml next to what `repro fetch` resolved for this run (fetch.json)."""
    blocks: list[Any] = []
    if manifest:
        keys = ("version", "git_commit", "profile", "overrides", "config_hash", "python")
        blocks.append(Table(["run", "value"], [[k, fmt(manifest.get(k))] for k in keys]))
        libs = manifest.get("libraries") or {}
        blocks.append(
            Table(["library", "version"], [[k, v or "not installed"] for k, v in libs.items()])
        )
        facts = {
            "hardware": manifest.get("hardware"),
            "environment": manifest.get("environment"),
            "data": manifest.get("data"),
            "warnings": manifest.get("warnings"),
        }
        blocks.append(Pre("hardware, environment, data and warnings (manifest.json)",
                          json.dumps(facts, indent=1, sort_keys=True, default=str)))
        blocks.append(Pre("resolved configuration", json.dumps(manifest.get("config"), indent=1)))
    else:
        blocks.append(NotRun("manifest.json"))
    pre = get("preflight/report.json")
    if pre:
        decision = pre.get("decision", {})
        trained = sorted({s["dtype"] for s in (get("train-1/summary.json"),
                                               get("train-2/summary.json"))
                          if isinstance(s, dict) and s.get("dtype")})  # fmt: skip
        ran = (f"; training ran in {' / '.join(trained)} (the segments' own record)"
               if trained and trained != [decision.get("dtype")] else "")
        blocks.append(Text(f"Preflight: device {pre.get('device', {}).get('name')}; the dtype "
                           f"it chose for this device: {decision.get('dtype')}{ran}."))
    release = tomllib.loads(RELEASE.read_text(encoding="utf-8")) if RELEASE.is_file() else {}
    rows = [
        [
            name,
            a.get("id", ""),
            a.get("revision", ""),
            fetched.get(f"{a.get('kind', '')}:{a.get('id', '')}", {}).get("commit", "-"),
        ]
        for name, a in release.items()
        if isinstance(a, dict)
    ]
    if rows:
        blocks += [
            Text(
                "Released artefacts (artifacts/release.toml) and what `repro fetch` "
                "resolved for this run (fetch.json). 'unresolved': the package pins no commit on "
                "purpose (the author published none, and none resolves offline); `repro fetch` "
                "resolves the revision per run and records the commit. A '-' in the last "
                "column: this run did not fetch that artefact (its profile does not use it, or "
                "the run was imported)."
            ),
            Table(["artefact", "hub id", "pinned revision", "resolved commit"], rows),
        ]
    return Section("environment", "Environment and pinned versions", blocks)


KINDS = {"paper-vs-release": "the paper's text and its released files disagree",
         "paper-vs-run": "the paper's text describes its own run inaccurately",
         "replay": "this replay runs differently from the original run",
         "missing": "the paper used it; it was not released",
         "addition": "beyond the paper (off or separate by default)"}


def deviations_section(manifest: dict[str, Any] | None = None) -> Section:
    """One collapsible entry per deviation: its topic and kind in the summary line, the paper,
    the release, this package, the option and the reason inside."""
    doc = tomllib.loads(DEVIATIONS.read_text(encoding="utf-8"))
    blocks: list[Any] = [Text(
        "Where the paper and its release disagree, and where this replay differs from or "
        "chooses between them (repro/deviations.toml): one entry per deviation, opened by a "
        f"click; {len(doc['deviation'])} entries.")]  # fmt: skip
    for d in doc["deviation"]:
        kind = KINDS.get(d["kind"], d["kind"])
        fields = [("paper", d["paper"]), ("release / original run", d["release"]),
                  ("this package", d["package"]), ("option", d["option"]), ("why", d["reason"])]
        if d["id"] == "software-versions" and manifest:  # the versions of this run, one source
            libs = manifest.get("libraries") or {}
            fields.append(("this run", ", ".join(
                [f"Python {manifest.get('python')}"]
                + [f"{k} {libs[k]}" for k in ("torch", "transformers", "unsloth") if libs.get(k)])
                + " (manifest.json)"))
        blocks.append(Folded(f"{d['topic']} ({kind}; id {d['id']})", fields))
    return Section("deviations", "Deviations ledger", blocks)
