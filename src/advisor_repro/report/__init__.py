"""The report a reviewer opens: the paper's tables beside this run's, the verify table, the
figures. `sections` builds the sections from the run directory, `rows` sets a paper table out as
paper | this run | expected range | verdict (`data_tables`, `eval_tables`), `claims` gives the
paper's three claims a state, `headline` the run one (shared with `repro verify`), `glance`
the summary card and what to run next, `verify_table` the verify table by the paper's section,
`curves` overlays the paper's released loss curves, `plots` draws the figures (matplotlib,
PNG), `render` writes one self-contained HTML file and its Markdown twin.
"""
