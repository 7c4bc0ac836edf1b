"""The report a reviewer opens: the paper's tables beside this run's, the verify table, the
figures. `sections` builds the sections from the run directory, `plots` draws the figures
(matplotlib, PNG), `render` writes one self-contained HTML file and its Markdown twin.
"""
