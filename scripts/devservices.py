#!/usr/bin/env python3
"""The local engines for development and tests: embedded PostgreSQL and the S3 endpoint.

    scripts/devservices.py start|stop|status|env

The engines themselves are imr_devtools.devservices (installed by `make setup`).
"""

import sys

from imr_devtools.devservices import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
