import sys

from surgtwin.app import main

sys.exit(main())
