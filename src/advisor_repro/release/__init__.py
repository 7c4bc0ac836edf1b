"""The paper's released files (codermillat/StudyAbroadGPT): `reader` reads and checks the
released judge CSV and BERTScore JSON (artifacts/release.toml pins them by sha256);
`importer` writes them into a run directory as the generate, metrics and judge stages would,
so that the judge statistics and verify run unchanged on the paper's own results.
"""
