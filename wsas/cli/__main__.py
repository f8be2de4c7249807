import sys

from wsas.cli import main

sys.exit(main())
