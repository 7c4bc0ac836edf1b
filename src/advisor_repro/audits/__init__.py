"""The paper's audits: the dataset's structure (Table 2) and topics (Table 1), and the cores of
the factuality audit and the training-data audit (Section 5: confident errors in the
fine-tuned answers, traced to the synthetic training answers).

`table1` computes the topic distribution, `table2` the structural audit; `core` holds the claim
catalog, the screening and the decision rules shared by the `audit` and `audit-training`
stages.
"""
