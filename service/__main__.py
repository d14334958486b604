"""`python -m service` is the same as the `creditwatch` command."""

import sys

from service.cli import main

sys.exit(main())
