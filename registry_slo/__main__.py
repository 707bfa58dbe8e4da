"""``python -m registry_slo``."""

from registry_slo.cli import main

raise SystemExit(main())
