"""A client for the kubelet API (port 10250) as the API server uses it: HTTPS verified with
the cluster CA, authenticated with a client certificate or a bearer token; plain requests,
followed logs, and upgrades (exec/attach/port-forward) handed back as raw TLS sockets.

Standard library only (ssl, http.client), so the end-to-end suite and the Swift tests can
both drive it.
"""

import http.client
import socket
import ssl


class KubeletAPIError(Exception):
    pass


class KubeletAPIClient:
    def __init__(self, host, port, cafile=None, certfile=None, keyfile=None, token=None, timeout=30.0,
                 insecure=False):
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
        context = ssl.create_default_context(cafile=cafile)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if certfile:
            context.load_cert_chain(certfile, keyfile)
        self.context = context

    def _headers(self, headers):
        merged = {}
        if self.token:
            merged["Authorization"] = "Bearer " + self.token
        merged.update(headers or {})
        return merged

    def connection(self):
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)

    def request(self, path, method="GET", headers=None, body=None):
        """One request: (status, headers as a dict with lowercase names, body bytes)."""
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=self._headers(headers))
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def follow_logs(self, path, until):
        """Streams a (followed) log until `until` arrived, then hangs up; the bytes read."""
        conn = self.connection()
        try:
            conn.request("GET", path, headers=self._headers(None))
            response = conn.getresponse()
            if response.status != 200:
                raise KubeletAPIError("%d %s" % (response.status, response.read().decode(errors="replace")))
            received = b""
            while until not in received:
                chunk = response.read1(65536)
                if not chunk:
                    break
                received += chunk
            return received
        finally:
            conn.close()

    def upgrade(self, path, method="POST", headers=None):
        """Sends an upgrade request; returns (status, headers, socket, bytes after the head).
        After a 101 the socket carries the upgraded protocol; the caller closes it."""
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock = self.context.wrap_socket(raw, server_hostname=self.host)
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (self.host, self.port)]
        all_headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                       "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
        all_headers.update(self._headers(headers))
        lines += ["%s: %s" % item for item in all_headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise KubeletAPIError("connection closed before a response")
            buffer += chunk
        head, rest = buffer.split(b"\r\n\r\n", 1)
        head_lines = head.decode().split("\r\n")
        status = int(head_lines[0].split(" ")[1])
        parsed = {}
        for line in head_lines[1:]:
            name, _, value = line.partition(":")
            parsed[name.strip().lower()] = value.strip()
        return status, parsed, sock, rest


def recv_exactly(sock, count, initial=b""):
    data = initial
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise KubeletAPIError("closed after %d of %d bytes" % (len(data), count))
        data += chunk
    return data
