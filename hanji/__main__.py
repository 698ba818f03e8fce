import sys

from hanji.cli import main

sys.exit(main())
