"""Builds test images from Debian's busybox-static, offline: an OCI image layout (gzip layers)
and a Docker archive (docker save format), each with two layers, a whiteout, a hard link and
a User in the config."""
import gzip
import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import tarfile


def _tar(add):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        add(archive)
    return buffer.getvalue()


def _file(archive, name, data=b"", mode=0o644, uid=0, gid=0, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.linkname = kind, mode, uid, gid, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mtime = 1700000000
    archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def layers():
    """Two uncompressed layer tars."""
    busybox = pathlib.Path(shutil.which("busybox") or "/bin/busybox").read_bytes()
    applets = subprocess.run(["busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()

    def base(archive):
        for directory in ["bin", "etc", "tmp", "data"]:
            _file(archive, directory, kind=tarfile.DIRTYPE, mode=0o755)
        _file(archive, "bin/busybox", busybox, mode=0o755)
        for applet in applets:
            if applet != "busybox":
                _file(archive, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
        _file(archive, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/data:/bin/sh\n")
        _file(archive, "etc/group", b"root:x:0:\napp:x:1000:\n")
        _file(archive, "etc/motd", b"first layer\n")

    def top(archive):
        _file(archive, "data", kind=tarfile.DIRTYPE, mode=0o755, uid=1000, gid=1000)
        _file(archive, "data/file", b"payload\n", uid=1000, gid=1000)
        _file(archive, "data/hardlink", kind=tarfile.LNKTYPE, link="data/file")
        _file(archive, "etc/.wh.motd")
    return [_tar(base), _tar(top)]


def config(diff_ids):
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-11-29T00:00:00Z",
        "config": {"User": "1000", "Env": ["PATH=/bin", "GREETING=hi"], "Cmd": ["sh", "-c", "cat /data/file"],
                   "WorkingDir": "/data", "ExposedPorts": {"8080/tcp": {}}, "Volumes": {"/data": {}}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, sort_keys=True).encode()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_layout(directory, name):
    """An OCI image layout with gzip layers; returns the manifest digest and config digest."""
    directory = pathlib.Path(directory)
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        digest = sha(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    raw = layers()
    compressed = [gzip.compress(layer, mtime=0) for layer in raw]
    config_bytes = config([sha(layer) for layer in raw])
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(c), "size": len(c)} for c in compressed],
    }, sort_keys=True).encode()
    manifest_digest = put(manifest)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": len(manifest),
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.split(":")[-1]}}]}))
    return manifest_digest, sha(config_bytes)


def docker_archive(path, tag):
    """A `docker save` archive; returns the config digest (the image id)."""
    raw = layers()
    config_bytes = config([sha(layer) for layer in raw])
    config_name = sha(config_bytes)[7:] + ".json"

    def add(archive):
        for index, layer in enumerate(raw):
            _file(archive, f"layer{index}", kind=tarfile.DIRTYPE, mode=0o755)
            _file(archive, f"layer{index}/layer.tar", layer)
        _file(archive, config_name, config_bytes)
        _file(archive, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": [tag],
                                                     "Layers": [f"layer{i}/layer.tar" for i in range(len(raw))]}]).encode())
    pathlib.Path(path).write_bytes(_tar(add))
    return sha(config_bytes)


def oci_image_blobs(platform_arch="amd64", docker=False, big_layer_bytes=0):
    """(manifest bytes, media type, {digest: bytes}) of the test image, as OCI or Docker v2;
    with big_layer_bytes, a third layer of that much random data (stored gzip level 1)."""
    raw = layers()
    if big_layer_bytes:
        raw.append(_tar(lambda archive: _file(archive, "data/random.bin", os.urandom(big_layer_bytes))))
    compressed = [gzip.compress(layer, compresslevel=1, mtime=0) for layer in raw]
    config_bytes = config([sha(layer) for layer in raw])
    blobs = {sha(config_bytes): config_bytes}
    for layer in compressed:
        blobs[sha(layer)] = layer
    if docker:
        media, config_media, layer_media = ("application/vnd.docker.distribution.manifest.v2+json",
                                            "application/vnd.docker.container.image.v1+json",
                                            "application/vnd.docker.image.rootfs.diff.tar.gzip")
    else:
        media, config_media, layer_media = ("application/vnd.oci.image.manifest.v1+json",
                                            "application/vnd.oci.image.config.v1+json",
                                            "application/vnd.oci.image.layer.v1.tar+gzip")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": media,
        "config": {"mediaType": config_media, "digest": sha(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": layer_media, "digest": sha(c), "size": len(c)} for c in compressed],
    }, sort_keys=True).encode()
    return manifest, media, blobs


class Registry:
    """A real Distribution registry (Debian's docker-registry) on a loopback port."""

    def __init__(self, base, htpasswd=None, token=None, log_level="error", tls=False):
        import socket
        import time
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.base = pathlib.Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.data = self.base / "data"
        auth = ""
        if htpasswd:
            user, password = htpasswd
            line = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True).stdout.strip()
            (self.base / "htpasswd").write_text(line + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: swiftlet-test\n    path: {self.base / 'htpasswd'}\n"
        if token:
            auth = (f"auth:\n  token:\n    realm: {token.realm}\n    service: swiftlet-test-registry\n"
                    f"    issuer: swiftlet-test-token\n    rootcertbundle: {token.bundle}\n")
        self.token = token
        self.tls = tls
        tls_config = ""
        if tls:
            self._self_signed(self.base / "tls.crt", self.base / "tls.key")
            tls_config = f"  tls:\n    certificate: {self.base / 'tls.crt'}\n    key: {self.base / 'tls.key'}\n"
        (self.base / "config.yml").write_text(
            f"version: 0.1\nlog:\n  level: {log_level}\nstorage:\n  filesystem:\n    rootdirectory: {self.data}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n{tls_config}{auth}")
        self.process = subprocess.Popen(["docker-registry", "serve", str(self.base / "config.yml")],
                                        stdout=subprocess.DEVNULL, stderr=open(self.base / "registry.log", "w"))
        self.auth = htpasswd
        import ssl
        import urllib.request
        self.context = ssl._create_unverified_context() if tls else None
        scheme = "https" if tls else "http"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{scheme}://127.0.0.1:{self.port}/v2/", timeout=1, context=self.context)
                break
            except urllib.error.HTTPError:
                break  # 401: up, with auth
            except OSError:
                time.sleep(0.1)

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def _self_signed(certificate_path, key_path):
        import datetime
        import ipaddress
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(2)
                       .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
                       .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                       .sign(key, hashes.SHA256()))
        certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))

    def _request(self, method, path, data=None, headers=None):
        import base64
        import urllib.request
        scheme = "https" if self.tls else "http"
        request = urllib.request.Request(f"{scheme}://{self.host}{path}" if path.startswith("/") else path,
                                         data=data, method=method, headers=headers or {})
        if self.auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode())
        if self.token:
            bearer = self.token.token("pusher", "swiftlet-test-registry", [f"repository:{self.pushing}:pull,push"])
            request.add_header("Authorization", "Bearer " + bearer)
        return urllib.request.urlopen(request, timeout=30, context=self.context)

    def push(self, repository, reference, manifest, media_type, blobs):
        self.pushing = repository
        for digest, data in blobs.items():
            location = self._request("POST", f"/v2/{repository}/blobs/uploads/").headers["Location"]
            separator = "&" if "?" in location else "?"
            self._request("PUT", f"{location}{separator}digest={digest}", data=data,
                          headers={"Content-Type": "application/octet-stream"})
        self._request("PUT", f"/v2/{repository}/manifests/{reference}", data=manifest, headers={"Content-Type": media_type})
        return sha(manifest)

    def blob_path(self, digest):
        hexdigest = digest[7:]
        return self.data / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"

    def stop(self):
        self.process.terminate()
        self.process.wait()

    def blob_fetches(self, digest):
        """How many GETs of a blob the registry served (from its access log)."""
        log = (self.base / "registry.log").read_text()
        return sum(1 for line in log.splitlines() if f"/blobs/{digest}" in line and "GET" in line and "response completed" in line)


class TokenService:
    """A small Docker token service (the Bearer flow), for a real registry configured with
    `auth: token`: checks Basic credentials and hands out ES256 JWTs whose x5c chains to the
    certificate the registry trusts."""

    def __init__(self, base, users):
        import datetime
        import http.server
        import socket
        import threading
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.base = pathlib.Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swiftlet-test-token")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
                            .not_valid_after(now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256()))
        self.bundle = self.base / "token.crt"
        self.bundle.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self.issued = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                import base64
                import urllib.parse
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                header = self.headers.get("Authorization", "")
                user = None
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if service.users.get(user) != password:
                        self.send_response(401)
                        self.end_headers()
                        return
                scopes = query.get("scope", [])
                token = service.token(user or "", query.get("service", [""])[0], scopes if user else [])
                service.issued.append((user, scopes))
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def realm(self):
        return f"http://127.0.0.1:{self.port}/token"

    def token(self, subject, audience, scopes):
        import base64
        import time
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        def b64(data):
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()]}
        now = int(time.time())
        claims = {"iss": "swiftlet-test-token", "sub": subject, "aud": audience, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": str(now) + subject, "access": access}
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
        return signing + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def stop(self):
        self.server.shutdown()
