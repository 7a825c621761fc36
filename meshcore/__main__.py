"""Run one standalone sidecar: ``python -m meshcore --config FILE`` (``meshchaos proxy``)."""

from __future__ import annotations

import argparse

from meshcore.standalone import run_standalone

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m meshcore", description=__doc__)
    parser.add_argument("--config", required=True, help="sidecar configuration (YAML)")
    raise SystemExit(run_standalone(parser.parse_args().config))
