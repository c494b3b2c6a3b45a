"""CURVE authentication of bus links: key files and the allow-list of client keys.

Keys are ZeroMQ certificate files (``NAME.key`` public, ``NAME.key_secret`` secret) written by
``zmq.auth``. A server (the binding side, e.g. sync's frames socket) accepts only clients whose
public certificate is in its allow-list folder; any other client's messages never arrive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


class CurveKeyError(ValueError):
    """A key file or folder that cannot be used (named)."""


def generate_keypair(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Write ``<dir>/<name>.key`` (public) and ``<dir>/<name>.key_secret`` (secret, mode 0600).

    Returns:
        ``(public_file, secret_file)``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(d), name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise CurveKeyError(f"CURVE key file {path} does not exist")
    try:
        public, secret_key = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as err:
        raise CurveKeyError(f"{path} is not a ZeroMQ certificate file ({err})") from None
    if secret and secret_key is None:
        raise CurveKeyError(f"{path} holds no secret key (use the .key_secret file)")
    return public, secret_key


@dataclass(frozen=True)
class CurveServer:
    """Server side: its secret certificate and the folder of allowed client public certificates."""

    secret_key_file: Path
    allowed_clients_dir: Path

    def keys(self) -> tuple[bytes, bytes]:
        """``(public, secret)`` of the server."""
        public, secret = _load(Path(self.secret_key_file), secret=True)
        assert secret is not None
        return public, secret

    def check(self) -> None:
        """Raise :class:`CurveKeyError` unless the key file and allow-list folder are usable."""
        self.keys()
        if not Path(self.allowed_clients_dir).is_dir():
            raise CurveKeyError(f"allowed CURVE client keys folder {self.allowed_clients_dir} does not exist")


@dataclass(frozen=True)
class CurveClient:
    """Client side: the server's public certificate and this client's secret certificate."""

    server_public_key_file: Path
    client_secret_key_file: Path

    def keys(self) -> tuple[bytes, bytes, bytes]:
        """``(server_public, client_public, client_secret)``."""
        server_public, _ = _load(Path(self.server_public_key_file), secret=False)
        public, secret = _load(Path(self.client_secret_key_file), secret=True)
        assert secret is not None
        return server_public, public, secret


def apply_server(socket: zmq.Socket, curve: CurveServer) -> None:
    """Make ``socket`` a CURVE server (call before bind)."""
    public, secret = curve.keys()
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True


def apply_client(socket: zmq.Socket, curve: CurveClient) -> None:
    """Make ``socket`` a CURVE client of the server in ``curve`` (call before connect)."""
    server_public, public, secret = curve.keys()
    socket.curve_serverkey = server_public
    socket.curve_publickey = public
    socket.curve_secretkey = secret


def start_authenticator(context: zmq.Context, curve: CurveServer) -> ThreadAuthenticator:
    """The context's ZAP handler: CURVE clients are allowed only if listed in the allow-list folder."""
    curve.check()
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(curve.allowed_clients_dir))
    return auth
