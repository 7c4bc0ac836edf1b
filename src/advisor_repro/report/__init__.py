"""The report: sections, the paper-beside-run tables, plots and rendering."""
