"""A small client for swiftlet's streaming server (the kubelet-compatible server behind the
CRI's Exec, Attach and PortForward URLs), in pure Python (standard library only).

It speaks what kubectl and the kubelet speak to a CRI streaming server:

* SPDY/3.1 (``Upgrade: SPDY/3.1``, ``X-Stream-Protocol-Version``) with zlib-compressed header
  blocks (the SPDY/3 dictionary, one zlib stream per direction), and the k8s remote-command
  protocol (streams named by the ``streamtype`` header: error, stdin, stdout, stderr,
  resize) or the port-forward protocol (``portforward.k8s.io``: a data and an error stream
  per forwarded connection, sharing ``requestID`` and ``port`` headers);
* WebSocket (RFC 6455) with the k8s channel protocols (``v5.channel.k8s.io``,
  ``v4.channel.k8s.io``, ``channel.k8s.io`` and the base64 variants): a channel byte in
  front of every message (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; 255 closes a
  channel in v5).

    out, err, status = exec_spdy(url, stdin_bytes=b"hi")   # url from the CRI Exec call
    exit_code(status)                                       # 0, or the command's code
    port_forward_spdy(url, 8080, b"GET / HTTP/1.0\\r\\n\\r\\n")

Every call uses a fresh connection (the URLs are single-use) and a socket timeout.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import urllib.parse
import zlib

__all__ = [
    "StreamingClientError",
    "exec_spdy",
    "attach_spdy",
    "exec_websocket",
    "port_forward_spdy",
    "port_forward_websocket",
    "exit_code",
    "http_request",
]

# The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1);
# its Adler-32 is 0xe3c6a7c2.
SPDY_DICTIONARY = (
    b"\x00\x00\x00\x07\x6f\x70\x74\x69\x6f\x6e\x73\x00\x00\x00\x04\x68"
    b"\x65\x61\x64\x00\x00\x00\x04\x70\x6f\x73\x74\x00\x00\x00\x03\x70"
    b"\x75\x74\x00\x00\x00\x06\x64\x65\x6c\x65\x74\x65\x00\x00\x00\x05"
    b"\x74\x72\x61\x63\x65\x00\x00\x00\x06\x61\x63\x63\x65\x70\x74\x00"
    b"\x00\x00\x0e\x61\x63\x63\x65\x70\x74\x2d\x63\x68\x61\x72\x73\x65"
    b"\x74\x00\x00\x00\x0f\x61\x63\x63\x65\x70\x74\x2d\x65\x6e\x63\x6f"
    b"\x64\x69\x6e\x67\x00\x00\x00\x0f\x61\x63\x63\x65\x70\x74\x2d\x6c"
    b"\x61\x6e\x67\x75\x61\x67\x65\x00\x00\x00\x0d\x61\x63\x63\x65\x70"
    b"\x74\x2d\x72\x61\x6e\x67\x65\x73\x00\x00\x00\x03\x61\x67\x65\x00"
    b"\x00\x00\x05\x61\x6c\x6c\x6f\x77\x00\x00\x00\x0d\x61\x75\x74\x68"
    b"\x6f\x72\x69\x7a\x61\x74\x69\x6f\x6e\x00\x00\x00\x0d\x63\x61\x63"
    b"\x68\x65\x2d\x63\x6f\x6e\x74\x72\x6f\x6c\x00\x00\x00\x0a\x63\x6f"
    b"\x6e\x6e\x65\x63\x74\x69\x6f\x6e\x00\x00\x00\x0c\x63\x6f\x6e\x74"
    b"\x65\x6e\x74\x2d\x62\x61\x73\x65\x00\x00\x00\x10\x63\x6f\x6e\x74"
    b"\x65\x6e\x74\x2d\x65\x6e\x63\x6f\x64\x69\x6e\x67\x00\x00\x00\x10"
    b"\x63\x6f\x6e\x74\x65\x6e\x74\x2d\x6c\x61\x6e\x67\x75\x61\x67\x65"
    b"\x00\x00\x00\x0e\x63\x6f\x6e\x74\x65\x6e\x74\x2d\x6c\x65\x6e\x67"
    b"\x74\x68\x00\x00\x00\x10\x63\x6f\x6e\x74\x65\x6e\x74\x2d\x6c\x6f"
    b"\x63\x61\x74\x69\x6f\x6e\x00\x00\x00\x0b\x63\x6f\x6e\x74\x65\x6e"
    b"\x74\x2d\x6d\x64\x35\x00\x00\x00\x0d\x63\x6f\x6e\x74\x65\x6e\x74"
    b"\x2d\x72\x61\x6e\x67\x65\x00\x00\x00\x0c\x63\x6f\x6e\x74\x65\x6e"
    b"\x74\x2d\x74\x79\x70\x65\x00\x00\x00\x04\x64\x61\x74\x65\x00\x00"
    b"\x00\x04\x65\x74\x61\x67\x00\x00\x00\x06\x65\x78\x70\x65\x63\x74"
    b"\x00\x00\x00\x07\x65\x78\x70\x69\x72\x65\x73\x00\x00\x00\x04\x66"
    b"\x72\x6f\x6d\x00\x00\x00\x04\x68\x6f\x73\x74\x00\x00\x00\x08\x69"
    b"\x66\x2d\x6d\x61\x74\x63\x68\x00\x00\x00\x11\x69\x66\x2d\x6d\x6f"
    b"\x64\x69\x66\x69\x65\x64\x2d\x73\x69\x6e\x63\x65\x00\x00\x00\x0d"
    b"\x69\x66\x2d\x6e\x6f\x6e\x65\x2d\x6d\x61\x74\x63\x68\x00\x00\x00"
    b"\x08\x69\x66\x2d\x72\x61\x6e\x67\x65\x00\x00\x00\x13\x69\x66\x2d"
    b"\x75\x6e\x6d\x6f\x64\x69\x66\x69\x65\x64\x2d\x73\x69\x6e\x63\x65"
    b"\x00\x00\x00\x0d\x6c\x61\x73\x74\x2d\x6d\x6f\x64\x69\x66\x69\x65"
    b"\x64\x00\x00\x00\x08\x6c\x6f\x63\x61\x74\x69\x6f\x6e\x00\x00\x00"
    b"\x0c\x6d\x61\x78\x2d\x66\x6f\x72\x77\x61\x72\x64\x73\x00\x00\x00"
    b"\x06\x70\x72\x61\x67\x6d\x61\x00\x00\x00\x12\x70\x72\x6f\x78\x79"
    b"\x2d\x61\x75\x74\x68\x65\x6e\x74\x69\x63\x61\x74\x65\x00\x00\x00"
    b"\x13\x70\x72\x6f\x78\x79\x2d\x61\x75\x74\x68\x6f\x72\x69\x7a\x61"
    b"\x74\x69\x6f\x6e\x00\x00\x00\x05\x72\x61\x6e\x67\x65\x00\x00\x00"
    b"\x07\x72\x65\x66\x65\x72\x65\x72\x00\x00\x00\x0b\x72\x65\x74\x72"
    b"\x79\x2d\x61\x66\x74\x65\x72\x00\x00\x00\x06\x73\x65\x72\x76\x65"
    b"\x72\x00\x00\x00\x02\x74\x65\x00\x00\x00\x07\x74\x72\x61\x69\x6c"
    b"\x65\x72\x00\x00\x00\x11\x74\x72\x61\x6e\x73\x66\x65\x72\x2d\x65"
    b"\x6e\x63\x6f\x64\x69\x6e\x67\x00\x00\x00\x07\x75\x70\x67\x72\x61"
    b"\x64\x65\x00\x00\x00\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74"
    b"\x00\x00\x00\x04\x76\x61\x72\x79\x00\x00\x00\x03\x76\x69\x61\x00"
    b"\x00\x00\x07\x77\x61\x72\x6e\x69\x6e\x67\x00\x00\x00\x10\x77\x77"
    b"\x77\x2d\x61\x75\x74\x68\x65\x6e\x74\x69\x63\x61\x74\x65\x00\x00"
    b"\x00\x06\x6d\x65\x74\x68\x6f\x64\x00\x00\x00\x03\x67\x65\x74\x00"
    b"\x00\x00\x06\x73\x74\x61\x74\x75\x73\x00\x00\x00\x06\x32\x30\x30"
    b"\x20\x4f\x4b\x00\x00\x00\x07\x76\x65\x72\x73\x69\x6f\x6e\x00\x00"
    b"\x00\x08\x48\x54\x54\x50\x2f\x31\x2e\x31\x00\x00\x00\x03\x75\x72"
    b"\x6c\x00\x00\x00\x06\x70\x75\x62\x6c\x69\x63\x00\x00\x00\x0a\x73"
    b"\x65\x74\x2d\x63\x6f\x6f\x6b\x69\x65\x00\x00\x00\x0a\x6b\x65\x65"
    b"\x70\x2d\x61\x6c\x69\x76\x65\x00\x00\x00\x06\x6f\x72\x69\x67\x69"
    b"\x6e\x31\x30\x30\x31\x30\x31\x32\x30\x31\x32\x30\x32\x32\x30\x35"
    b"\x32\x30\x36\x33\x30\x30\x33\x30\x32\x33\x30\x33\x33\x30\x34\x33"
    b"\x30\x35\x33\x30\x36\x33\x30\x37\x34\x30\x32\x34\x30\x35\x34\x30"
    b"\x36\x34\x30\x37\x34\x30\x38\x34\x30\x39\x34\x31\x30\x34\x31\x31"
    b"\x34\x31\x32\x34\x31\x33\x34\x31\x34\x34\x31\x35\x34\x31\x36\x34"
    b"\x31\x37\x35\x30\x32\x35\x30\x34\x35\x30\x35\x32\x30\x33\x20\x4e"
    b"\x6f\x6e\x2d\x41\x75\x74\x68\x6f\x72\x69\x74\x61\x74\x69\x76\x65"
    b"\x20\x49\x6e\x66\x6f\x72\x6d\x61\x74\x69\x6f\x6e\x32\x30\x34\x20"
    b"\x4e\x6f\x20\x43\x6f\x6e\x74\x65\x6e\x74\x33\x30\x31\x20\x4d\x6f"
    b"\x76\x65\x64\x20\x50\x65\x72\x6d\x61\x6e\x65\x6e\x74\x6c\x79\x34"
    b"\x30\x30\x20\x42\x61\x64\x20\x52\x65\x71\x75\x65\x73\x74\x34\x30"
    b"\x31\x20\x55\x6e\x61\x75\x74\x68\x6f\x72\x69\x7a\x65\x64\x34\x30"
    b"\x33\x20\x46\x6f\x72\x62\x69\x64\x64\x65\x6e\x34\x30\x34\x20\x4e"
    b"\x6f\x74\x20\x46\x6f\x75\x6e\x64\x35\x30\x30\x20\x49\x6e\x74\x65"
    b"\x72\x6e\x61\x6c\x20\x53\x65\x72\x76\x65\x72\x20\x45\x72\x72\x6f"
    b"\x72\x35\x30\x31\x20\x4e\x6f\x74\x20\x49\x6d\x70\x6c\x65\x6d\x65"
    b"\x6e\x74\x65\x64\x35\x30\x33\x20\x53\x65\x72\x76\x69\x63\x65\x20"
    b"\x55\x6e\x61\x76\x61\x69\x6c\x61\x62\x6c\x65\x4a\x61\x6e\x20\x46"
    b"\x65\x62\x20\x4d\x61\x72\x20\x41\x70\x72\x20\x4d\x61\x79\x20\x4a"
    b"\x75\x6e\x20\x4a\x75\x6c\x20\x41\x75\x67\x20\x53\x65\x70\x74\x20"
    b"\x4f\x63\x74\x20\x4e\x6f\x76\x20\x44\x65\x63\x20\x30\x30\x3a\x30"
    b"\x30\x3a\x30\x30\x20\x4d\x6f\x6e\x2c\x20\x54\x75\x65\x2c\x20\x57"
    b"\x65\x64\x2c\x20\x54\x68\x75\x2c\x20\x46\x72\x69\x2c\x20\x53\x61"
    b"\x74\x2c\x20\x53\x75\x6e\x2c\x20\x47\x4d\x54\x63\x68\x75\x6e\x6b"
    b"\x65\x64\x2c\x74\x65\x78\x74\x2f\x68\x74\x6d\x6c\x2c\x69\x6d\x61"
    b"\x67\x65\x2f\x70\x6e\x67\x2c\x69\x6d\x61\x67\x65\x2f\x6a\x70\x67"
    b"\x2c\x69\x6d\x61\x67\x65\x2f\x67\x69\x66\x2c\x61\x70\x70\x6c\x69"
    b"\x63\x61\x74\x69\x6f\x6e\x2f\x78\x6d\x6c\x2c\x61\x70\x70\x6c\x69"
    b"\x63\x61\x74\x69\x6f\x6e\x2f\x78\x68\x74\x6d\x6c\x2b\x78\x6d\x6c"
    b"\x2c\x74\x65\x78\x74\x2f\x70\x6c\x61\x69\x6e\x2c\x74\x65\x78\x74"
    b"\x2f\x6a\x61\x76\x61\x73\x63\x72\x69\x70\x74\x2c\x70\x75\x62\x6c"
    b"\x69\x63\x70\x72\x69\x76\x61\x74\x65\x6d\x61\x78\x2d\x61\x67\x65"
    b"\x3d\x67\x7a\x69\x70\x2c\x64\x65\x66\x6c\x61\x74\x65\x2c\x73\x64"
    b"\x63\x68\x63\x68\x61\x72\x73\x65\x74\x3d\x75\x74\x66\x2d\x38\x63"
    b"\x68\x61\x72\x73\x65\x74\x3d\x69\x73\x6f\x2d\x38\x38\x35\x39\x2d"
    b"\x31\x2c\x75\x74\x66\x2d\x2c\x2a\x2c\x65\x6e\x71\x3d\x30\x2e"
)
assert zlib.adler32(SPDY_DICTIONARY) == 0xE3C6A7C2

_FLAG_FIN = 0x01
_SYN_STREAM, _SYN_REPLY, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _HEADERS, _WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9


class StreamingClientError(Exception):
    """The server refused the upgrade (``status``, ``body``) or broke the protocol."""

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.status = status
        self.body = body


# MARK: HTTP


def _split_url(url):
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "http":
        raise StreamingClientError("only http:// URLs are supported: %r" % url)
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    return parsed.hostname, parsed.port or 80, path


def _read_head(sock, buffer):
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise StreamingClientError("connection closed before the response head")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers, rest


def _read_body(sock, headers, rest):
    length = int(headers.get("content-length", ["0"])[0])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return rest[:length]


def http_request(url, headers=(), method="GET", timeout=30.0):
    """Sends one request with ``headers`` (name, value pairs) and returns
    ``(status, headers, body, socket, leftover)``; the socket stays open after a 101."""
    host, port, path = _split_url(url)
    sock = socket.create_connection((host, port), timeout=timeout)
    request = "%s %s HTTP/1.1\r\nHost: %s:%d\r\n" % (method, path, host, port)
    for name, value in headers:
        request += "%s: %s\r\n" % (name, value)
    sock.sendall((request + "\r\n").encode("latin-1"))
    status, response_headers, rest = _read_head(sock, b"")
    if status == 101:
        return status, response_headers, b"", sock, rest
    body = _read_body(sock, response_headers, rest)
    sock.close()
    return status, response_headers, body, None, b""


# MARK: SPDY/3.1


class SPDYConnection:
    """The client side of a SPDY/3.1 connection: opens streams (odd IDs), sends data, and
    records what the server sends per stream until it closes the connection."""

    def __init__(self, url, protocols, timeout=30.0):
        status, headers, body, sock, rest = http_request(
            url,
            [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
            + [("X-Stream-Protocol-Version", p) for p in protocols],
            timeout=timeout,
        )
        if status != 101:
            raise StreamingClientError(
                "upgrade refused: %d %s" % (status, body.decode("utf-8", "replace").strip()), status, body
            )
        self.protocol = headers.get("x-stream-protocol-version", [None])[0]
        self.sock = sock
        self.buffer = rest
        self.compressor = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, SPDY_DICTIONARY)
        self.decompressor = zlib.decompressobj(zdict=SPDY_DICTIONARY)
        self.next_stream_id = 1
        self.data = {}
        self.finished = set()
        self.replies = {}
        self.resets = {}
        self.goaway = None
        self.closed = False

    def close(self):
        self.sock.close()

    def _header_block(self, headers):
        block = struct.pack(">I", len(headers))
        for name, value in headers:
            name = name.lower().encode()
            value = str(value).encode()
            block += struct.pack(">I", len(name)) + name + struct.pack(">I", len(value)) + value
        return self.compressor.compress(block) + self.compressor.flush(zlib.Z_SYNC_FLUSH)

    def _control(self, frame_type, flags, body):
        return struct.pack(">HHI", 0x8003, frame_type, (flags << 24) | len(body)) + body

    def open_stream(self, headers, fin=False):
        """Sends SYN_STREAM with ``headers`` (name, value pairs); returns the stream ID."""
        stream_id = self.next_stream_id
        self.next_stream_id += 2
        body = struct.pack(">IIH", stream_id, 0, 0) + self._header_block(headers)
        self.sock.sendall(self._control(_SYN_STREAM, _FLAG_FIN if fin else 0, body))
        return stream_id

    def send(self, stream_id, data, fin=False):
        """Sends DATA (in 32 KiB frames); ``fin`` ends the client's side of the stream."""
        view = memoryview(data)
        while True:
            chunk, view = view[: 32 << 10], view[32 << 10 :]
            last = len(view) == 0
            flags = _FLAG_FIN if (fin and last) else 0
            if len(chunk) or flags:
                self.sock.sendall(struct.pack(">II", stream_id, (flags << 24) | len(chunk)) + bytes(chunk))
            if last:
                return

    def _need(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buffer += chunk
        return True

    def read_frame(self):
        """Reads one frame into the record; False once the server closed the connection."""
        if self.closed or not self._need(8):
            self.closed = True
            return False
        word, flags_length = struct.unpack(">II", self.buffer[:8])
        flags, length = flags_length >> 24, flags_length & 0xFFFFFF
        if not self._need(8 + length):
            self.closed = True
            return False
        body, self.buffer = self.buffer[8 : 8 + length], self.buffer[8 + length :]
        if not word & 0x80000000:
            stream_id = word & 0x7FFFFFFF
            self.data.setdefault(stream_id, bytearray()).extend(body)
            if flags & _FLAG_FIN:
                self.finished.add(stream_id)
            return True
        version, frame_type = (word >> 16) & 0x7FFF, word & 0xFFFF
        if version != 3:
            raise StreamingClientError("server sent SPDY version %d" % version)
        if frame_type == _SYN_REPLY:
            stream_id = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
            self.decompressor.decompress(body[4:])  # keeps the zlib stream in step
            self.replies[stream_id] = flags
            if flags & _FLAG_FIN:
                self.finished.add(stream_id)
        elif frame_type in (_SYN_STREAM, _HEADERS):
            offset = 10 if frame_type == _SYN_STREAM else 4
            self.decompressor.decompress(body[offset:])
        elif frame_type == _RST_STREAM:
            stream_id, status = struct.unpack(">II", body[:8])
            self.resets[stream_id & 0x7FFFFFFF] = status
            self.finished.add(stream_id & 0x7FFFFFFF)
        elif frame_type == _GOAWAY:
            self.goaway = struct.unpack(">II", body[:8])[1] if len(body) >= 8 else 0
        elif frame_type == _PING:
            if struct.unpack(">I", body[:4])[0] % 2 == 0:  # the server's ping: echo it
                self.sock.sendall(self._control(_PING, 0, body[:4]))
        return True

    def read_until(self, condition):
        while not condition(self):
            if not self.read_frame():
                return

    def read_to_end(self):
        while self.read_frame():
            pass


def _decode_status(raw, json_status):
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    if json_status:
        return json.loads(text)
    return text


def exit_code(status):
    """The exit code a v4/v5 status carries: 0 for Success (or no status), the
    ``ExitCode`` cause for ``NonZeroExitCode``; None for other failures."""
    if status is None:
        return 0
    if isinstance(status, str):
        return None
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in status.get("details", {}).get("causes", []):
            if cause.get("reason") == "ExitCode":
                return int(cause["message"])
    return None


def exec_spdy(
    url,
    stdin_bytes=None,
    stdout=True,
    stderr=True,
    tty=False,
    resizes=(),
    protocol="v4.channel.k8s.io",
    timeout=30.0,
):
    """Runs an exec (or attach) session over SPDY as client-go does and returns
    ``(stdout, stderr, status)``: the output bytes, and the error stream's content (a
    ``metav1.Status`` dict for v4, the error text for older protocols, None when empty).

    The streams opened must match what the CRI request asked for (``stdin_bytes`` not None
    for stdin; ``resizes``, ``(width, height)`` pairs, are sent on the resize stream when
    ``tty``)."""
    connection = SPDYConnection(url, [protocol], timeout)
    try:
        error_id = connection.open_stream([("streamtype", "error")])
        stdin_id = connection.open_stream([("streamtype", "stdin")]) if stdin_bytes is not None else None
        stdout_id = connection.open_stream([("streamtype", "stdout")]) if stdout else None
        stderr_id = connection.open_stream([("streamtype", "stderr")]) if stderr else None
        resize_id = None
        if tty and protocol in ("v4.channel.k8s.io", "v3.channel.k8s.io"):
            resize_id = connection.open_stream([("streamtype", "resize")])
            for width, height in resizes:
                connection.send(resize_id, json.dumps({"Width": width, "Height": height}).encode())
        if stdin_id is not None:
            connection.send(stdin_id, stdin_bytes, fin=True)
        connection.read_to_end()
        get = lambda stream_id: bytes(connection.data.get(stream_id, b"")) if stream_id else b""
        return get(stdout_id), get(stderr_id), _decode_status(get(error_id), protocol == "v4.channel.k8s.io")
    finally:
        connection.close()


attach_spdy = exec_spdy


def port_forward_spdy(url, port, payload, request_id=0, timeout=30.0):
    """Forwards one connection to ``port`` in the pod over SPDY: sends ``payload``, ends the
    client's side, and returns everything the pod's side sent until it closed. Raises
    StreamingClientError with the error stream's text when forwarding failed."""
    connection = SPDYConnection(url, ["portforward.k8s.io"], timeout)
    try:
        headers = [("port", str(port)), ("requestID", str(request_id))]
        error_id = connection.open_stream(headers + [("streamtype", "error")])
        data_id = connection.open_stream(headers + [("streamtype", "data")])
        connection.send(data_id, payload, fin=True)
        connection.read_until(lambda c: data_id in c.finished and error_id in c.finished)
        error = bytes(connection.data.get(error_id, b""))
        if error:
            raise StreamingClientError(error.decode("utf-8", "replace"))
        if connection.replies.get(data_id, 0) & _FLAG_FIN:
            raise StreamingClientError("the server refused the data stream")
        return bytes(connection.data.get(data_id, b""))
    finally:
        connection.close()


# MARK: WebSocket


class WebSocketConnection:
    """The client side of a k8s channel WebSocket."""

    def __init__(self, url, protocols, timeout=30.0):
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", key),
        ]
        if protocols:
            headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
        status, response_headers, body, sock, rest = http_request(url, headers, timeout=timeout)
        if status != 101:
            raise StreamingClientError(
                "upgrade refused: %d %s" % (status, body.decode("utf-8", "replace").strip()), status, body
            )
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        if response_headers.get("sec-websocket-accept", [""])[0] != accept.decode():
            raise StreamingClientError("bad Sec-WebSocket-Accept")
        self.protocol = response_headers.get("sec-websocket-protocol", [""])[0]
        self.base64 = "base64" in self.protocol
        self.sock = sock
        self.buffer = rest
        self.messages = []
        self.channels = {}
        self.close_code = None
        self.closed = False

    def close(self):
        self.sock.close()

    def send_frame(self, opcode, payload, fin=True):
        mask = os.urandom(4)
        header = bytes([(0x80 if fin else 0) | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", length)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send(self, channel, data):
        """Sends ``data`` on ``channel`` (binary, or text for the base64 protocols)."""
        if self.base64:
            self.send_frame(0x1, bytes([ord("0") + channel]) + base64.b64encode(data))
        else:
            self.send_frame(0x2, bytes([channel]) + data)

    def close_channel(self, channel):
        """v5: tells the server the client is done writing ``channel``."""
        self.send(255, bytes([channel]))

    def _need(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buffer += chunk
        return True

    def read_message(self):
        """Reads one frame; False once the connection is over (after answering a close)."""
        if self.closed or not self._need(2):
            self.closed = True
            return False
        first, second = self.buffer[0], self.buffer[1]
        length, offset = second & 0x7F, 2
        if length == 126:
            if not self._need(4):
                return False
            length, offset = struct.unpack(">H", self.buffer[2:4])[0], 4
        elif length == 127:
            if not self._need(10):
                return False
            length, offset = struct.unpack(">Q", self.buffer[2:10])[0], 10
        if not self._need(offset + length):
            self.closed = True
            return False
        payload, self.buffer = self.buffer[offset : offset + length], self.buffer[offset + length :]
        opcode = first & 0x0F
        if opcode in (0x1, 0x2) and payload:
            channel, data = payload[0], payload[1:]
            if self.base64:
                channel, data = channel - ord("0"), base64.b64decode(data)
            self.messages.append((channel, data))
            self.channels.setdefault(channel, bytearray()).extend(data)
        elif opcode == 0x8:
            self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            try:
                self.send_frame(0x8, payload[:2])
            except OSError:
                pass
            self.closed = True
            return False
        elif opcode == 0x9:
            self.send_frame(0xA, payload)
        return True

    def read_until(self, condition):
        while not condition(self):
            if not self.read_message():
                return

    def read_to_end(self):
        while self.read_message():
            pass


def exec_websocket(
    url,
    stdin_bytes=None,
    tty=False,
    resizes=(),
    protocol="v5.channel.k8s.io",
    timeout=30.0,
):
    """Runs an exec (or attach) session over WebSocket and returns ``(stdout, stderr,
    status)`` as :func:`exec_spdy` does. With v5, stdin is closed after ``stdin_bytes``; older
    protocols cannot close stdin, so the command must end on its own."""
    connection = WebSocketConnection(url, [protocol], timeout)
    try:
        if tty:
            for width, height in resizes:
                connection.send(4, json.dumps({"Width": width, "Height": height}).encode())
        if stdin_bytes is not None:
            if stdin_bytes:
                connection.send(0, stdin_bytes)
            if connection.protocol.startswith("v5."):
                connection.close_channel(0)
        connection.read_to_end()
        get = lambda channel: bytes(connection.channels.get(channel, b""))
        json_status = connection.protocol.startswith(("v4.", "v5."))
        return get(1), get(2), _decode_status(get(3), json_status)
    finally:
        connection.close()


def port_forward_websocket(url, port, payload, expected_length, timeout=30.0):
    """Forwards one connection to ``port`` over WebSocket (``v4.channel.k8s.io``, the port
    in the ``port`` query parameter): sends ``payload`` and returns the first
    ``expected_length`` bytes the pod's side answers (a WebSocket client cannot half-close,
    so the caller says how much to wait for)."""
    separator = "&" if "?" in url else "?"
    connection = WebSocketConnection(url + "%sport=%d" % (separator, port), ["v4.channel.k8s.io"], timeout)
    try:
        connection.send(0, payload)
        prefix = struct.pack("<H", port)
        connection.read_until(
            lambda c: len(c.channels.get(0, b"")) >= 2 + expected_length or len(c.channels.get(1, b"")) > 2
        )
        error = bytes(connection.channels.get(1, b""))[2:]
        if error:
            raise StreamingClientError(error.decode("utf-8", "replace"))
        data = bytes(connection.channels.get(0, b""))
        if data[:2] != prefix:
            raise StreamingClientError("data channel did not start with the port")
        connection.send_frame(0x8, struct.pack(">H", 1000))
        return data[2 : 2 + expected_length]
    finally:
        connection.close()
