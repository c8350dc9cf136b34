"""``python -m system.autoscaler --config FILE``: the lab's autoscaler (contracts §5 config, plus
``state_dir`` and ``topology_file``)."""
from __future__ import annotations

import sys

from system.autoscaler.service import AutoscalerService, build_app
from system.common.serve import run


def make(config, path):
    service = AutoscalerService(config, config_path=path)
    return service, build_app(service)


if __name__ == "__main__":
    sys.exit(run("autoscaler", None, make))
