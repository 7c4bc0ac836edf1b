"""The paper's reference evaluation (Section 4, Table 5 and the 256-token table).

`generation` answers the 50 evaluation prompts with the base and the fine-tuned model (greedy,
both caps in one pass, batched to the VRAM budget, resumable per batch); `metrics` scores the
answers against the synthetic references (SacreBLEU, ROUGE-L, BERTScore, paired bootstrap CIs);
`embeddings` is the sentence encoder (all-MiniLM-L6-v2) the audits use; `answers` and
`scoring` are the generate and metrics stages' cores, with the records they write
(GenerateSummary, MetricsSummary). Batched generation is measured in the bench wing.
"""
