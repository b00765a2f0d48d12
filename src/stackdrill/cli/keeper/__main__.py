"""`python -m stackdrill.cli.keeper NAME`: started by `stackdrill up`, not by hand."""

import sys

from stackdrill.cli.keeper.service import main

sys.exit(main(sys.argv[1:]))
