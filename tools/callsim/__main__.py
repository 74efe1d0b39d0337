"""Entry point for `python -m tools.callsim`."""

from tools.callsim.cli import main

raise SystemExit(main())
