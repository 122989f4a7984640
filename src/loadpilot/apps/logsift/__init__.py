"""logsift, the reference workload: a web service that groups log lines by similarity (drain3 templates).

    python -m loadpilot.apps.logsift --port 8080
    python -m loadpilot.apps.logsift --fd 3            # serve a listening socket inherited from a supervisor

It imports nothing from the rest of loadpilot, so that it stands for any workload a pool might run. This package
imports nothing at all on its own, to keep a worker's start fast: see `serve` for the command line, `app` for the
routes and `mining` for the template mining.
"""
