"""`python -m service` is the same as the `creditwatch` command."""

import sys

from service.commands.main import main

sys.exit(main())
