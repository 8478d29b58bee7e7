import sys

from uarbench.cli import main

sys.exit(main())
