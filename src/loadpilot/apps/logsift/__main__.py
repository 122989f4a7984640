"""`python -m loadpilot.apps.logsift`: run one logsift worker."""

import sys

from loadpilot.apps.logsift.serve import main

sys.exit(main())
