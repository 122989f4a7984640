"""A small local stand-in for the few OpenStack endpoints the Nova actuator calls through openstacksdk: a Keystone v3
token (with a catalog naming this server as Nova) and Nova's hypervisors, servers, server actions (os-migrateLive,
resize, confirmResize), in-progress migrations and flavors. No OpenStack runs here; this is the one permitted
stand-in. It listens on 127.0.0.1 on a free port, keeps its state in memory, records every request, and moves a
live migration forward one step per read of the server's migrations.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MIB = 1024 * 1024
MAX_VERSION = "2.90"


@dataclass
class Server:
    id: str
    name: str
    host: str
    flavor: dict[str, Any]
    status: str = "ACTIVE"
    target: str = ""  # while migrating
    steps_done: int = 0

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "tenant_id": "p1",
            "user_id": "u1",
            "OS-EXT-SRV-ATTR:host": self.host,
            "OS-EXT-SRV-ATTR:hypervisor_hostname": f"{self.host}.example",
            "OS-EXT-STS:task_state": "migrating" if self.status == "MIGRATING" else None,
            "flavor": self.flavor,
            "links": [],
            "addresses": {},
            "metadata": {},
        }


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class NovaStandIn:
    """The stand-in's state: hosts (name -> vCPUs, MiB), servers, flavors; `steps` reads of a migration until it
    ends; `refuse` makes the next os-migrateLive answer with that HTTP status."""

    hosts: dict[str, tuple[int, int]] = field(default_factory=dict)
    servers: dict[str, Server] = field(default_factory=dict)
    flavors: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 3
    refuse: int | None = None
    roll_back: bool = False
    password: str = "secret"  # the stand-in's only user
    requests: list[Recorded] = field(default_factory=list)
    _http: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._http is not None
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> NovaStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                stand_in._serve(self, "GET")

            def do_POST(self) -> None:
                stand_in._serve(self, "POST")

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def add_server(self, name: str, host: str, vcpus: int, ram_mb: int) -> Server:
        flavor = next(f for f in self.flavors if f["vcpus"] == vcpus and f["ram"] == ram_mb)
        server = Server(str(uuid.uuid4()), name, host, _embedded(flavor))
        self.servers[server.id] = server
        return server

    def actions(self) -> list[tuple[str, Any]]:
        """The server actions asked for: (server id, body)."""
        return [(r.path.split("/")[-2], r.body) for r in self.requests if r.path.endswith("/action")]

    # --- serving --------------------------------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(method, parts.path, parse_qs(parts.query), body, dict(h.headers.items())))
        status, payload, headers = self._route(method, parts.path.rstrip("/"), parse_qs(parts.query), body)
        data = b"" if payload is None else json.dumps(payload).encode()
        h.send_response(status)
        for k, v in {"Content-Type": "application/json", **headers}.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        base = self.url
        nova = f"{base}/compute/v2.1"
        version = {
            "id": "v2.1",
            "status": "CURRENT",
            "version": MAX_VERSION,
            "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{nova}/"}],
        }
        identity = {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{base}/identity/v3/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
        }
        if method == "GET" and path == "/identity/v3":
            return 200, {"version": identity}, {}
        if method == "GET" and path == "/identity":
            return 300, {"versions": {"values": [identity]}}, {}
        if method == "POST" and path == "/identity/v3/auth/tokens":
            password = body["auth"]["identity"]["password"]["user"].get("password")
            if password != self.password:
                return 401, {"error": {"code": 401, "title": "Unauthorized", "message": "bad credentials"}}, {}
            return 201, {"token": _token(nova)}, {"X-Subject-Token": "standin-token"}
        if method == "GET" and path == "/compute":
            return 200, {"versions": [version]}, {}
        if method == "GET" and path == "/compute/v2.1":
            return 200, {"version": version}, {}
        if not path.startswith("/compute/v2.1/"):
            return 404, {"error": {"message": f"no {path}", "code": 404}}, {}
        return self._nova(method, path.removeprefix("/compute/v2.1/"), query, body)

    def _nova(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        words = path.split("/")
        if method == "GET" and path in ("os-hypervisors/detail", "os-hypervisors"):
            return (
                200,
                {"hypervisors": [_hypervisor(i, h, c, m) for i, (h, (c, m)) in enumerate(self.hosts.items())]},
                {},
            )
        if method == "GET" and path in ("servers/detail", "servers"):
            host = query.get("host", [None])[0]
            name = query.get("name", [None])[0]
            found = [
                s.body()
                for s in self.servers.values()
                if (host is None or s.host == host) and (name is None or name in s.name)
            ]
            return 200, {"servers": found}, {}
        if method == "GET" and path in ("flavors/detail", "flavors"):
            return 200, {"flavors": self.flavors}, {}
        if words[0] == "flavors" and len(words) == 2:
            flavor = next((f for f in self.flavors if f["id"] == words[1]), None)
            return (200, {"flavor": flavor}, {}) if flavor else _not_found("flavor", words[1])
        if words[0] != "servers" or len(words) < 2:
            return _not_found("resource", path)
        server = self.servers.get(words[1])
        if server is None:
            return _not_found("server", words[1])
        if method == "GET" and len(words) == 2:
            return 200, {"server": server.body()}, {}
        if method == "GET" and words[2:] == ["migrations"]:
            return 200, {"migrations": self._progress(server)}, {}
        if method == "POST" and words[2:] == ["action"]:
            return self._action(server, body)
        return _not_found("resource", path)

    def _action(self, server: Server, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if "os-migrateLive" in body:
            if self.refuse is not None:
                status, self.refuse = self.refuse, None
                return status, {"conflictingRequest" if status == 409 else "badRequest": {"message": "refused"}}, {}
            target = body["os-migrateLive"]["host"]
            if target not in self.hosts:
                return 400, {"badRequest": {"message": f"Compute host {target} could not be found.", "code": 400}}, {}
            server.status, server.target, server.steps_done = "MIGRATING", target, 0
            return 202, None, {}
        if "resize" in body:
            flavor = next(f for f in self.flavors if f["id"] == body["resize"]["flavorRef"])
            server.flavor, server.status = _embedded(flavor), "VERIFY_RESIZE"
            return 202, None, {}
        if "confirmResize" in body:
            server.status = "ACTIVE"
            return 204, None, {}
        return 400, {"badRequest": {"message": f"unknown action {list(body)}"}}, {}

    def _progress(self, server: Server) -> list[dict[str, Any]]:
        """One step of a live migration per read; the last one moves the server (or rolls it back)."""
        if server.status != "MIGRATING":
            return []
        server.steps_done += 1
        total = server.flavor["ram"] * MIB
        if server.steps_done > self.steps:
            if not self.roll_back:
                server.host = server.target
            server.status, server.target = "ACTIVE", ""
            return []
        processed = total * server.steps_done // (self.steps + 1)
        return [
            {
                "id": 1,
                "server_uuid": server.id,
                "status": "running",
                "source_compute": server.host,
                "dest_compute": server.target,
                "memory_total_bytes": total,
                "memory_processed_bytes": processed,
                "memory_remaining_bytes": total - processed,
                "disk_total_bytes": 0,
                "disk_processed_bytes": 0,
                "disk_remaining_bytes": 0,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:01Z",
            }
        ]


def _embedded(flavor: dict[str, Any]) -> dict[str, Any]:
    return {"vcpus": flavor["vcpus"], "ram": flavor["ram"], "disk": flavor["disk"], "original_name": flavor["name"]}


def flavor(fid: str, vcpus: int, ram_mb: int, disk: int = 10) -> dict[str, Any]:
    return {"id": fid, "name": f"m{vcpus}.{ram_mb}", "vcpus": vcpus, "ram": ram_mb, "disk": disk, "links": []}


def _hypervisor(i: int, host: str, vcpus: int, memory_mb: int) -> dict[str, Any]:
    return {
        "id": i + 1,
        "hypervisor_hostname": f"{host}.example",
        "hypervisor_type": "QEMU",
        "state": "up",
        "status": "enabled",
        "vcpus": vcpus,
        "memory_mb": memory_mb,
        "service": {"host": host, "id": i + 10, "disabled_reason": None},
    }


def _not_found(what: str, name: str) -> tuple[int, Any, dict[str, str]]:
    return 404, {"itemNotFound": {"message": f"{what} {name} could not be found.", "code": 404}}, {}


def _token(nova: str) -> dict[str, Any]:
    return {
        "methods": ["password"],
        "expires_at": "2099-01-01T00:00:00.000000Z",
        "issued_at": "2026-01-01T00:00:00.000000Z",
        "user": {"id": "u1", "name": "admin", "domain": {"id": "default", "name": "Default"}},
        "project": {"id": "p1", "name": "admin", "domain": {"id": "default", "name": "Default"}},
        "roles": [{"id": "r1", "name": "admin"}],
        "catalog": [
            {
                "type": "compute",
                "name": "nova",
                "id": "c1",
                "endpoints": [
                    {"id": "e1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": nova}
                ],
            }
        ],
    }
