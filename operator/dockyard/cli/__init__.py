"""`dockyard`: the command line for builds (quick build from a directory, runs, logs, cancel)."""
