"""OpenSSH's ``sshd`` on a loopback port, for the "via SSH Tunnel" connection method.

sshd runs in the foreground as a child of pytest (never the system service), with its
own host key, one authorized user key and a debug log that names every forward.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.servers.base import LOOPBACK, ChildServer, free_port, require_tool


def _openssh_private_key(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def _openssh_public_key(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


@dataclass
class SshKeyPair:
    private_openssh: str = field(repr=False)
    public_line: str  # "ssh-ed25519 AAAA…"

    @classmethod
    def generate(cls) -> SshKeyPair:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = ed25519.Ed25519PrivateKey.generate()
        return cls(_openssh_private_key(key), _openssh_public_key(key))

    @property
    def private_pem(self) -> str:
        """The same key in PKCS#8 PEM, the other format people paste."""
        key = serialization.load_ssh_private_key(self.private_openssh.encode(), password=None)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()


class SshServer(ChildServer):
    """OpenSSH's sshd on a loopback port with its own host key and one authorized user key.

    ``.host``, ``.port``, ``.username``, ``.user_key`` (:class:`SshKeyPair`), ``.host_key_line``
    (a known_hosts line for the server), ``.log()`` (sshd's debug log names every forward).
    """

    name = "sshd"

    def __init__(self, executable: str, workdir: Path) -> None:
        import getpass

        port = free_port()
        self.host = LOOPBACK
        self.username = getpass.getuser()
        self.user_key = SshKeyPair.generate()
        host_key = SshKeyPair.generate()
        host_key_path = workdir / "ssh_host_ed25519_key"
        host_key_path.touch(mode=0o600)
        host_key_path.write_text(host_key.private_openssh)
        self.host_key_line = f"[{LOOPBACK}]:{port} {host_key.public_line}"
        authorized = workdir / "authorized_keys"
        authorized.write_text(self.user_key.public_line + "\n")
        config = workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {LOOPBACK}",
                    f"HostKey {host_key_path}",
                    f"PidFile {workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin yes",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "AllowTcpForwarding yes",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "LogLevel DEBUG1",
                    "MaxStartups 50",
                    "",
                ]
            )
        )
        super().__init__(
            [executable, "-D", "-e", "-f", str(config), "-p", str(port)],
            workdir / "sshd.log",
            port,
        )

    def known_hosts(self) -> str:
        return self.host_key_line


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory) -> Iterator[SshServer]:
    """sshd as a child on a free loopback port (see :class:`SshServer`)."""
    executable = require_tool("sshd")
    if os.geteuid() == 0:
        # sshd's privilege-separation directory; the Debian service makes it at boot.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    server = SshServer(executable, tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()
