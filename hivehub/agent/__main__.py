"""``python -m hivehub.agent ...``: the same as ``hive agent ...``."""

import sys

from hivehub.cli.agent import cli_main

if __name__ == "__main__":
    sys.exit(cli_main())
