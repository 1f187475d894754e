import sys

from demo_events.cli import main

sys.exit(main())
