"""An SSH tunnel for outbound HTTP: paramiko, one ``direct-tcpip`` channel per connection.

:class:`SshTunnel` logs in to an SSH server once (lazily, on the first connection)
and then hands out ordinary sockets whose other end is a channel to a host:port as
seen from the SSH server. Each socket is one end of a ``socketpair``; a small pump
thread copies bytes between the other end and the channel. Callers (urllib3, via
``config.http``, for registries and Helm repositories alike) therefore do TLS, SNI and
certificate checks on a real socket, with the server's real host name, exactly as on a
direct connection; no local port is ever opened for other processes to use.

The server's host key is checked against pinned ``known_hosts`` lines; with no pin,
an unknown key is refused unless "trust on first use" is on, in which case the key
is accepted and handed to ``on_host_key_learned`` to be stored. A key that differs
from a pinned one is always refused.

Framework-free, like ``config.http``; no secret ever appears in a repr or message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

DEFAULT_SSH_PORT = 22
_PUMP_CHUNK = 64 * 1024
_RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


class TunnelError(Exception):
    """The tunnel failed; ``str(e)`` is a message a user can act on, ``cause`` says which step."""

    SSH_UNREACHABLE = "ssh_unreachable"  # the SSH server could not be reached or spoke no SSH
    SSH_AUTH = "ssh_auth"  # the SSH server rejected the user's password or key
    HOST_KEY = "host_key"  # the server's host key is unknown or differs from the pinned one
    FORWARD = "forward"  # the SSH server could not connect to the target (registry, repository)
    SETTINGS = "settings"  # the tunnel's own settings are unusable (e.g. a bad private key)

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause

    def __repr__(self) -> str:
        return f"TunnelError({str(self)!r}, cause={self.cause!r})"


@dataclass(frozen=True)
class SshTarget:
    """Where the tunnel goes and how to log in. ``host_keys`` holds known_hosts lines."""

    host: str
    port: int = DEFAULT_SSH_PORT
    username: str = ""
    password: str = field(default="", repr=False)
    private_key: str = field(default="", repr=False)
    host_keys: str = ""
    trust_on_first_use: bool = False
    # Called with a known_hosts line when a key was trusted on first use.
    on_host_key_learned: Callable[[str], None] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The host as a known_hosts line names it: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port == DEFAULT_SSH_PORT else f"[{self.host}]:{self.port}"


# --- host keys ------------------------------------------------------------------


def parse_host_keys(text: str) -> list[paramiko.PKey]:
    """Public keys from known_hosts lines (``[host]:port type base64 [comment]``, host optional).

    Raises ``ValueError`` with a message for the user on a line that holds no key.
    """
    keys = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0].startswith("@"):
            raise ValueError(
                f"Line {number}: markers such as {fields[0]} are not supported; paste a plain "
                "known_hosts line."
            )
        # The host names are optional: the tunnel's SSH host decides which server this is.
        start = 0 if _looks_like_key_type(fields[0]) else 1
        if len(fields) < start + 2 or not _looks_like_key_type(fields[start]):
            raise ValueError(
                f"Line {number} is not a known_hosts line: expected “[host]:port key-type "
                "base64-key”, for example the output of ssh-keyscan."
            )
        key_type, blob = fields[start], fields[start + 1]
        try:
            data = base64.b64decode(blob, validate=True)
            key = paramiko.PKey.from_type_string(key_type, data)
        except (binascii.Error, ValueError, paramiko.SSHException) as exc:
            raise ValueError(
                f"Line {number}: the {key_type} key could not be read ({type(exc).__name__}); "
                "paste the whole line, with the full base64 key."
            ) from None
        keys.append(key)
    return keys


def _looks_like_key_type(token: str) -> bool:
    return token.startswith(("ssh-", "ecdsa-", "sk-", "rsa-"))


def known_hosts_line(target: SshTarget, key: paramiko.PKey) -> str:
    return f"{target.known_hosts_name} {key.get_name()} {key.get_base64()}"


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:…`` as ``ssh-keygen -l`` prints it, to compare with what the server's admin sees."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {fingerprint(key)}"


# --- private keys -----------------------------------------------------------------


def load_private_key(text: str) -> paramiko.PKey:
    """A paramiko key from a pasted OpenSSH or PEM private key (not passphrase-protected).

    Raises ``ValueError`` with a message for the user.
    """
    data = (text or "").strip().encode() + b"\n"
    loaded: PrivateKeyTypes
    try:
        try:
            loaded = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ValueError(
            "The private key is protected by a passphrase; paste an unencrypted key "
            "(a key made for Wharf alone, e.g. ssh-keygen -N '')."
        ) from None
    except (ValueError, paramiko.SSHException):
        raise ValueError(
            "The private key could not be read: paste the whole OpenSSH or PEM key, "
            "including its BEGIN and END lines."
        ) from None
    if isinstance(loaded, rsa.RSAPrivateKey):
        key_class: type[paramiko.PKey] = paramiko.RSAKey
    elif isinstance(loaded, ed25519.Ed25519PrivateKey):
        key_class = paramiko.Ed25519Key
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        key_class = paramiko.ECDSAKey
    else:
        raise ValueError("Use an Ed25519, ECDSA or RSA private key.")
    # paramiko reads some key types only in the OpenSSH format: hand it that, whatever was pasted.
    openssh = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    try:
        return key_class.from_private_key(io.StringIO(openssh))
    except (paramiko.SSHException, ValueError):
        raise ValueError("The private key could not be read by the SSH library.") from None


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko when the server's key type has no pinned key."""

    def __init__(self, tunnel: SshTunnel) -> None:
        self.tunnel = tunnel

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        target = self.tunnel.target
        pinned = self.tunnel.pinned_keys
        if pinned:
            # Pinned keys of other types only: the server did not show a pinned key.
            raise TunnelError(_mismatch_message(target, key, pinned[0]), cause=TunnelError.HOST_KEY)
        if not target.trust_on_first_use:
            raise TunnelError(
                f"The SSH server {target.address} presented a host key Wharf does not know "
                f"({describe_key(key)}). Check it with the server's administrator, then paste "
                "its known_hosts line into “Pinned host key”, or tick “Trust on first use”.",
                cause=TunnelError.HOST_KEY,
            )
        self.tunnel.learned_host_key = known_hosts_line(target, key)


def check_learned_host_key(target: SshTarget, learned_line: str, pinned_lines: str) -> None:
    """Raise a host-key :class:`TunnelError` unless the key trusted on first use is pinned."""
    learned = parse_host_keys(learned_line)[0]
    try:
        pinned = parse_host_keys(pinned_lines)
    except ValueError as exc:
        raise TunnelError(
            f"The pinned host key is unusable: {exc}", cause=TunnelError.SETTINGS
        ) from None
    if not pinned or any(key == learned for key in pinned):
        return
    raise TunnelError(_mismatch_message(target, learned, pinned[0]), cause=TunnelError.HOST_KEY)


def _mismatch_message(target: SshTarget, presented: paramiko.PKey, pinned: paramiko.PKey) -> str:
    return (
        f"Host key mismatch for the SSH server {target.address}: it presented "
        f"{describe_key(presented)}, but the pinned key is {describe_key(pinned)}. Someone may "
        "be intercepting the connection; if the server's key really changed, clear the pinned "
        "key (and tick “Trust on first use”, or paste the new key)."
    )


# --- the tunnel -------------------------------------------------------------------


class SshTunnel:
    """An SSH connection that opens sockets to hosts reachable from the SSH server.

    Thread-safe: the first :meth:`open_socket` logs in; a failed login is remembered,
    so a burst of requests does not hammer the server with failing logins.
    """

    def __init__(self, target: SshTarget, *, timeout: float = 10.0, what: str = "registry") -> None:
        self.target = target
        self.timeout = timeout
        self.what = what  # what is reached through the tunnel, for messages
        self.learned_host_key = ""  # a known_hosts line, when trusted on first use
        self.channels_opened = 0
        self._client: paramiko.SSHClient | None = None
        self._failure: TunnelError | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._pumps: list[_Pump] = []
        try:
            self.pinned_keys = parse_host_keys(target.host_keys)
        except ValueError as exc:
            raise TunnelError(
                f"The pinned host key is unusable: {exc}", cause=TunnelError.SETTINGS
            ) from None
        self._pkey: paramiko.PKey | None = None
        if target.private_key.strip():
            try:
                self._pkey = load_private_key(target.private_key)
            except ValueError as exc:
                raise TunnelError(str(exc), cause=TunnelError.SETTINGS) from None

    def __repr__(self) -> str:
        return f"<SshTunnel {self.target.username}@{self.target.address}>"

    def __enter__(self) -> SshTunnel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- connecting ---------------------------------------------------------------

    def connect(self) -> paramiko.Transport:
        """Log in (once); raises :class:`TunnelError`."""
        with self._lock:
            if self._closed:
                raise TunnelError("The SSH tunnel is closed.", cause=TunnelError.SSH_UNREACHABLE)
            if self._failure is not None:
                raise self._failure
            if self._client is None:
                try:
                    self._client = self._login()
                except TunnelError as exc:
                    self._failure = exc
                    raise
            transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise TunnelError(
                f"The SSH connection to {self.target.address} was closed.",
                cause=TunnelError.SSH_UNREACHABLE,
            )
        return transport

    def _login(self) -> paramiko.SSHClient:
        target = self.target
        client = paramiko.SSHClient()
        host_keys = client.get_host_keys()
        for key in self.pinned_keys:
            host_keys.add(target.known_hosts_name, key.get_name(), key)
        client.set_missing_host_key_policy(_HostKeyPolicy(self))
        try:
            client.connect(
                target.host,
                port=target.port,
                username=target.username,
                password=target.password or None,
                pkey=self._pkey,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
                allow_agent=False,  # only the credentials entered in Wharf, never the host's
                look_for_keys=False,
            )
        except TunnelError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise TunnelError(
                _mismatch_message(target, exc.key, exc.expected_key), cause=TunnelError.HOST_KEY
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            what = " and ".join(
                name
                for name, given in (("password", target.password), ("private key", self._pkey))
                if given
            )
            raise TunnelError(
                f"The SSH server {target.address} rejected user “{target.username}” with the "
                f"{what or 'credentials'} given. Check the SSH user, password or private key "
                "(its public key must be in the user's authorized_keys).",
                cause=TunnelError.SSH_AUTH,
            ) from None
        except TimeoutError:
            client.close()
            raise TunnelError(
                f"The SSH server {target.address} did not answer within {self.timeout:g} seconds. "
                "Check the SSH host, port and firewall.",
                cause=TunnelError.SSH_UNREACHABLE,
            ) from None
        except (OSError, paramiko.SSHException, EOFError, UnicodeError) as exc:
            # UnicodeError: a host name that is not valid (an empty or over-long label).
            client.close()
            raise TunnelError(
                f"Could not reach the SSH server {target.address}: {_socket_reason(exc)}. "
                "Check the SSH host and port, and that the dashboard's network can reach it.",
                cause=TunnelError.SSH_UNREACHABLE,
            ) from None
        if self.learned_host_key and target.on_host_key_learned is not None:
            try:
                target.on_host_key_learned(self.learned_host_key)
            except BaseException:
                client.close()  # refused (or failed to store): no open SSH connection left
                raise
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)
        return client

    # --- sockets ------------------------------------------------------------------

    def open_socket(self, host: str, port: int) -> socket.socket:
        """A connected socket to ``host:port`` as the SSH server sees it."""
        transport = self.connect()
        try:
            channel = transport.open_channel(
                "direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=self.timeout
            )
        except paramiko.ChannelException as exc:
            raise TunnelError(
                f"The SSH server {self.target.address} could not connect to {host}:{port} "
                f"({exc.text or 'channel open failed'}). Check that the {self.what} is reachable "
                "from the SSH server, and that the server allows TCP forwarding.",
                cause=TunnelError.FORWARD,
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TunnelError(
                f"The SSH server {self.target.address} did not open a connection to "
                f"{host}:{port} ({exc or type(exc).__name__}).",
                cause=TunnelError.FORWARD,
            ) from None
        ours, theirs = socket.socketpair()
        pump = _Pump(theirs, channel)
        with self._lock:
            self.channels_opened += 1
            self._pumps = [p for p in self._pumps if p.alive] + [pump]
        pump.start()
        return ours

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
            pumps, self._pumps = self._pumps, []
        for pump in pumps:
            pump.stop()
        if client is not None:
            client.close()


class _Pump(threading.Thread):
    """Copies bytes both ways between a local socket and an SSH channel until either closes."""

    def __init__(self, sock: socket.socket, channel: paramiko.Channel) -> None:
        super().__init__(name="wharf-ssh-pump", daemon=True)
        self.sock = sock
        self.channel = channel
        self.alive = True

    def run(self) -> None:
        try:
            while True:
                readable, _, _ = select.select([self.sock, self.channel], [], [], 60)
                if self.sock in readable:
                    data = self.sock.recv(_PUMP_CHUNK)
                    if not data:
                        break
                    self.channel.sendall(data)
                if self.channel in readable:
                    data = self.channel.recv(_PUMP_CHUNK)
                    if not data:
                        break
                    self.sock.sendall(data)
        except (OSError, EOFError, paramiko.SSHException, ValueError):
            pass  # either side went away: close both
        finally:
            self.stop()

    def stop(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            self.channel.close()
        with contextlib.suppress(OSError):
            self.sock.close()


def _socket_reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeError):
        return "the host name is not valid"
    text = str(exc).lower()
    if "refused" in text:
        return "the connection was refused"
    if "name or service not known" in text or "resolve" in text or "getaddrinfo" in text:
        return "the host name could not be resolved"
    if "banner" in text or "protocol" in text:
        return "it does not speak SSH"
    if "unreachable" in text:
        return "the network is unreachable"
    return "the connection failed"
