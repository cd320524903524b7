from lab.cli import entry

raise SystemExit(entry())
