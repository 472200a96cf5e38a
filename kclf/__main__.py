import sys

from kclf.cli import main

sys.exit(main())
