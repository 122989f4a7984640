"""The dashboard's pages: one HTML shell per page, the script and styles that fill it, and the vendored charts.

The shells carry no data (the page's script reads it from the API with the reader's token), so they are served
to anyone; every number and name on screen comes from a read the server's read-auth setting guards. Nothing in
the pages changes state. A strict Content-Security-Policy keeps scripts to the server's own files.
"""

from __future__ import annotations

from importlib.resources import files
from string import Template

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from loadpilot import __version__

STATIC = files("loadpilot.server") / "static"
PAGES = {"overview": "Overview", "pool": "Pool", "host": "Host", "events": "Events", "coordination": "Coordination"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_SHELL = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · loadpilot</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/vendor/uPlot.min.css?v=$version">
<link rel="stylesheet" href="/static/dashboard.css?v=$version">
<script src="/static/vendor/uPlot.iife.min.js?v=$version" defer></script>
<script src="/static/dashboard.js?v=$version" defer></script>
</head>
<body data-page="$page">
<header>
<a class="brand" href="/">loadpilot</a>
<nav>
<a href="/" data-page="overview">Overview</a>
<a href="/events" data-page="events">Events</a>
<a href="/coordination" data-page="coordination">Coordination</a>
<a href="/docs">API</a>
</nav>
<span id="live" class="live">loading…</span>
</header>
<main>
<div id="problem" class="error" hidden></div>
<div id="page"></div>
<noscript><p>The dashboard needs JavaScript; the same data is in the JSON API at /docs.</p></noscript>
</main>
</body>
</html>
""")


def _shell(page: str) -> HTMLResponse:
    html = _SHELL.substitute(page=page, title=PAGES[page], version=__version__)
    return HTMLResponse(html, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def add_dashboard_pages(app: FastAPI) -> None:
    """Serve the dashboard at / (overview), /pools/NAME, /hosts/ID, /events and /coordination, and its files."""

    @app.get("/", include_in_schema=False)
    def overview() -> Response:
        return _shell("overview")

    @app.get("/pools/{name}", include_in_schema=False)
    def pool(name: str) -> Response:
        return _shell("pool")

    @app.get("/hosts/{host_id:path}", include_in_schema=False)
    def host(host_id: str) -> Response:
        return _shell("host")

    @app.get("/events", include_in_schema=False)
    def events() -> Response:
        return _shell("events")

    @app.get("/coordination", include_in_schema=False)
    def coordination() -> Response:
        return _shell("coordination")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
