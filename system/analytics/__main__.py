"""``python -m system.analytics --config FILE``: parse, build, serve until SIGTERM."""
from __future__ import annotations

import argparse
import logging
import sys

from lab.errors import NinesError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m system.analytics")
    parser.add_argument("--config", required=True, help="service config JSON (contracts §5)")
    args = parser.parse_args(argv)
    from system.analytics.config import load_config
    try:
        config = load_config(args.config)
    except NinesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    logging.basicConfig(filename=config.log_file, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import uvicorn
    from system.analytics.api import create_app
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
