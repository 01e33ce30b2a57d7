import sys

from lc_console.cli import main

sys.exit(main())
