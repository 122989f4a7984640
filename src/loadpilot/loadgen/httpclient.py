"""A small HTTP/1.1 client for load generation: one pre-built request, keep-alive connections, cheap parsing.

It does only what a load generator needs and does it with little CPU per request: the request is built once as
bytes and written with one call; of the answer it reads the status line and the three headers that say how the
body ends and whether the connection may be reused (Content-Length, Transfer-Encoding: chunked,
Connection), and it reads and drops the body. Plain http:// only: a load generator measures the server, and a
TLS handshake per connection would mostly measure this client.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from loadpilot.errors import PermanentError

HEAD_END = b"\r\n\r\n"
READ_LIMIT = 1 << 16  # the longest response head accepted (nginx's large_client_header_buffers default is 8k)
BIG_BODY = 1 << 20  # bodies above this are read in pieces, never held whole
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: a method or a header name
NO_BODY_STATUS = frozenset({204, 304})
SET_BY_US = {"content-length": "--body", "transfer-encoding": "--body"}


class HttpSetupError(PermanentError):
    """The URL, method, headers or body cannot make a request; the message names the option."""


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as this client understands it."""


class ClosedBeforeAnswer(Exception):
    """The connection closed (or was reset) before a single byte of the answer came: a stale keep-alive."""


@dataclass(frozen=True)
class Target:
    """Where requests go: the address to connect to, and what the request line and Host header say."""

    host: str
    port: int
    host_header: str
    path: str

    @property
    def url(self) -> str:
        """The URL, as a person would type it."""
        return f"http://{self.host_header}{self.path}"


def parse_url(url: str) -> Target:
    """Check an http:// URL and split it into a Target; anything else raises HttpSetupError naming the URL."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        raise HttpSetupError(
            f"URL {url!r}: https is not supported (the generator would spend its CPU on TLS, not on load); "
            "put the server's plain http:// address, or a TLS-terminating proxy's backend, instead"
        )
    if parts.scheme != "http":
        raise HttpSetupError(f"URL {url!r}: must start with http:// (got scheme {parts.scheme!r})")
    try:
        host, port = parts.hostname, parts.port or 80
    except ValueError as exc:
        raise HttpSetupError(f"URL {url!r}: {exc}") from None
    if not host:
        raise HttpSetupError(f"URL {url!r}: has no host")
    if parts.username is not None:
        raise HttpSetupError(f"URL {url!r}: user:password@ is not supported; send --header 'Authorization: ...'")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in path for c in " \r\n"):
        raise HttpSetupError(f"URL {url!r}: the path must not hold spaces or line breaks (percent-encode them)")
    return Target(host, port, parts.netloc.rpartition("@")[2], path)


def parse_header(text: str) -> tuple[str, str]:
    """A `--header "Name: value"` option as (name, value); HttpSetupError when it is not a valid header line."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not TOKEN.fullmatch(name):
        raise HttpSetupError(f"--header {text!r}: expected 'Name: value' with a name of letters, digits or -")
    if any(c in value for c in "\r\n\0"):
        raise HttpSetupError(f"--header {text!r}: the value must not hold line breaks")
    if name.lower() in SET_BY_US:
        raise HttpSetupError(f"--header {text!r}: {name} is set from {SET_BY_US[name.lower()]}; leave it out")
    return name, value


def build_request(target: Target, method: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The complete request as bytes, built once and written as is for every request.

    Host comes from the URL unless a header sets it; Content-Length is sent when there is a body or the method
    usually carries one.
    """
    if not TOKEN.fullmatch(method):
        raise HttpSetupError(f"--method {method!r}: not an HTTP method name")
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {target.path} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {target.host_header}")
    if "user-agent" not in names:
        lines.append("User-Agent: loadpilot-loadgen")
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def asks_to_close(headers: list[tuple[str, str]]) -> bool:
    """Whether the request says `Connection: close` itself (then every request opens a new connection)."""
    return any(n.lower() == "connection" and "close" in v.lower() for n, v in headers)


async def resolve(target: Target) -> list[tuple[str, int]]:
    """The addresses to connect to, looked up once (not per connection); HttpSetupError when the name is unknown."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HttpSetupError(f"URL http://{target.host_header}: cannot resolve {target.host!r}: {exc}") from None
    addresses: list[tuple[str, int]] = []
    for info in infos:
        address = (str(info[4][0]), int(info[4][1]))
        if address not in addresses:
            addresses.append(address)
    return addresses


class Connection:
    """One keep-alive connection: send the request, read one answer, say whether it can be used again."""

    __slots__ = ("_reader", "_writer", "reusable", "used")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.reusable = True
        self.used = 0  # answers read on it so far

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        """Connect (TCP_NODELAY is asyncio's default for TCP)."""
        reader, writer = await asyncio.open_connection(host, port, limit=READ_LIMIT)
        return cls(reader, writer)

    @property
    def stale(self) -> bool:
        """Whether the server has already closed this idle connection (its EOF is waiting to be read)."""
        return self._reader.at_eof() or self._writer.is_closing()

    async def exchange(self, request: bytes, expect_body: bool = True) -> int:
        """Send `request`, read the whole answer (dropping the body), return its status code.

        Raises ClosedBeforeAnswer when the connection closed before any of the answer came (the caller may retry
        on a new connection), ProtocolError on an answer that is not HTTP/1.x, and the socket's own errors.
        Afterwards `reusable` says whether another request may follow on this connection.
        """
        writer, reader = self._writer, self._reader
        writer.write(request)
        if len(request) > READ_LIMIT:
            await writer.drain()
        while True:
            try:
                head = await reader.readuntil(HEAD_END)
            except asyncio.IncompleteReadError as exc:
                self.reusable = False
                if exc.partial:
                    raise ConnectionResetError("the connection closed in the middle of the answer's head") from None
                raise ClosedBeforeAnswer() from None
            except ConnectionResetError:
                self.reusable = False
                raise ClosedBeforeAnswer() from None
            except asyncio.LimitOverrunError:
                self.reusable = False
                raise ProtocolError(f"the answer's head is longer than {READ_LIMIT} bytes") from None
            status, length, chunked, keep_alive = _parse_head(head)
            if status >= 200 or status == 101:
                break  # 1xx answers other than 101 are interim: the real one follows
        if status == 101:
            self.reusable = False
            raise ProtocolError("the server switched protocols (101), which a load generator does not follow")
        self.used += 1
        if not keep_alive:
            self.reusable = False
        if not expect_body or status in NO_BODY_STATUS:
            return status
        if chunked:
            await self._skip_chunked()
        elif length is not None:
            await self._skip(length)
        else:  # no length: the body ends when the server closes the connection
            self.reusable = False
            while await reader.read(BIG_BODY):
                pass
        return status

    async def _skip(self, length: int) -> None:
        reader = self._reader
        if length <= BIG_BODY:
            await reader.readexactly(length)
            return
        while length > 0:
            piece = await reader.read(min(length, BIG_BODY))
            if not piece:
                raise asyncio.IncompleteReadError(b"", length)
            length -= len(piece)

    async def _skip_chunked(self) -> None:
        reader = self._reader
        while True:
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size line {line[:40]!r}") from None
            if size < 0:
                raise ProtocolError(f"bad chunk size line {line[:40]!r}")
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the empty line
                    pass
                return
            await self._skip(size + 2)

    def close(self) -> None:
        """Close the connection without waiting (the kernel finishes the goodbye)."""
        self.reusable = False
        self._writer.close()


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, Content-Length or None, chunked, keep-alive) from a response head ending in CRLF CRLF."""
    end = head.find(b"\r\n")
    if not head.startswith(b"HTTP/1.") or end < 12:
        raise ProtocolError(f"not an HTTP/1.x status line: {head[:40]!r}")
    try:
        status = int(head[9:12])
    except ValueError:
        raise ProtocolError(f"bad status line {head[:end]!r}") from None
    fields = head[end:].lower()  # starts with CRLF, so every header name follows one
    length: int | None = None
    at = fields.find(b"\r\ncontent-length:")
    if at >= 0:
        try:
            length = int(fields[at + 17 : fields.index(b"\r\n", at + 2)])
        except ValueError:
            raise ProtocolError("bad Content-Length") from None
        if length < 0:
            raise ProtocolError("negative Content-Length")
    chunked = False
    at = fields.find(b"\r\ntransfer-encoding:")
    if at >= 0:
        chunked = b"chunked" in fields[at : fields.index(b"\r\n", at + 2)]
        length = None  # chunked wins over a Content-Length (RFC 9112 6.3)
    at = fields.find(b"\r\nconnection:")
    connection = fields[at : fields.index(b"\r\n", at + 2)] if at >= 0 else b""
    http10 = head[7:8] == b"0"  # HTTP/1.0 closes unless asked to keep alive; 1.1 keeps alive unless told to close
    keep_alive = b"keep-alive" in connection if http10 else b"close" not in connection
    return status, length, chunked, keep_alive
