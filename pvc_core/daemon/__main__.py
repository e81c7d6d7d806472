"""``python -m pvc_core.daemon`` is ``pvcnoded``."""

import sys

from pvc_core.daemon.cli import main

sys.exit(main())
