import sys

from surgtwin.cli.main import main

sys.exit(main())
