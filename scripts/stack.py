#!/usr/bin/env python3
"""The production topology of docker-compose.yaml, natively on one machine.

    scripts/stack.py start [--concurrency N] | stop | status | env

The stack itself is imr_devtools.stack (installed by `make setup`); see its docstring and the README.
"""

import sys

from imr_devtools.stack import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
