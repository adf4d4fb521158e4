"""``python -m gridflow.control.app --db URL [--port N] [--address A] [--show]``."""

from gridflow.control.app.cli import main

raise SystemExit(main())
