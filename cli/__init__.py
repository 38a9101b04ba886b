"""The `llara` command line (installed as llara.cli)."""
