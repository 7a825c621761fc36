"""Run one standalone sidecar: ``python -m meshcore --config FILE`` (``meshchaos proxy``)."""

from __future__ import annotations

import argparse

from meshcore.standalone import run_standalone


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (the command line when ``None``), run the sidecar, return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m meshcore", description=__doc__)
    parser.add_argument("--config", required=True, help="sidecar configuration (YAML)")
    return run_standalone(parser.parse_args(argv).config)


if __name__ == "__main__":
    raise SystemExit(main())
