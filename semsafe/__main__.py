"""`python -m semsafe ...`: the CLI, for an interpreter where the `semsafe` script is not on PATH
(a machine whose packages were installed by other means, bench/gpu_smoke.sh's SEMSAFE_PYTHON)."""

import sys

from .cli import main

sys.exit(main())
