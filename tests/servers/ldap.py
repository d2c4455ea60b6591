"""Debian's ``slapd`` on a loopback port, with a small directory loaded by ``slapadd``.

slapd runs in the foreground as a child of pytest (never the system service), from a
``slapd.conf`` and an MDB database in a temporary folder. The directory holds people,
groups (``groupOfNames``) and a service account Wharf searches with (``bind_dn``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.base import LOOPBACK, ChildServer, free_port, require_tool

BASE_DN = "dc=wharf,dc=test"
PEOPLE = f"ou=people,{BASE_DN}"
GROUPS = f"ou=groups,{BASE_DN}"
BIND_DN = f"cn=wharf,ou=services,{BASE_DN}"
BIND_PASSWORD = "ldap-Bind-Passw0rd"
ROOT_DN = f"cn=admin,{BASE_DN}"
ROOT_PASSWORD = "ldap-Root-Passw0rd"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")

# People: uid → (password, given name, surname, groups).
USERS = {
    "alice": ("alice-Passw0rd-1", "Alice", "Andersen", ["platform", "developers"]),
    "bob": ("bob-Passw0rd-1", "Bob", "Berg", ["developers"]),
    "carol": ("carol-Passw0rd-1", "Carol", "Chen", []),
}


def directory_ldif() -> str:
    entries = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Wharf tests\ndc: wharf",
        *(
            f"dn: ou={ou},{BASE_DN}\nobjectClass: organizationalUnit\nou: {ou}"
            for ou in ("people", "groups", "services")
        ),
        f"dn: {BIND_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: wharf\nuserPassword: {BIND_PASSWORD}",
    ]
    for uid, (password, given, surname, _) in USERS.items():
        entries.append(
            f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {given} {surname}\ngivenName: {given}\nsn: {surname}\n"
            f"mail: {uid}@wharf.test\nuserPassword: {password}"
        )
    groups = sorted({g for *_, member_of in USERS.values() for g in member_of} | {"auditors"})
    for group in groups:
        members = [uid for uid, (*_, member_of) in USERS.items() if group in member_of]
        # groupOfNames needs a member: an empty group lists the service account.
        lines = [f"member: uid={uid},{PEOPLE}" for uid in members] or [f"member: {BIND_DN}"]
        entries.append(
            f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n" + "\n".join(lines)
        )
    return "\n\n".join(entries) + "\n"


class SlapdServer(ChildServer):
    """slapd on a loopback port: ``.uri``, and the module's constants for its directory."""

    name = "slapd"

    def __init__(self, slapd: str, slapadd: str, workdir: Path) -> None:
        port = free_port()
        self.uri = f"ldap://{LOOPBACK}:{port}"
        database = workdir / "db"
        database.mkdir()
        config = workdir / "slapd.conf"
        config.write_text(
            "\n".join(
                [
                    *(f"include /etc/ldap/schema/{schema}.schema" for schema in SCHEMAS),
                    f"pidfile {workdir / 'slapd.pid'}",
                    f"argsfile {workdir / 'slapd.args'}",
                    "modulepath /usr/lib/ldap",
                    "moduleload back_mdb",
                    "database mdb",
                    "maxsize 16777216",
                    f'suffix "{BASE_DN}"',
                    f'rootdn "{ROOT_DN}"',
                    f"rootpw {ROOT_PASSWORD}",
                    f"directory {database}",
                    "access to attrs=userPassword by anonymous auth by self read by * none",
                    "access to * by * read",
                    "",
                ]
            )
        )
        ldif = workdir / "directory.ldif"
        ldif.write_text(directory_ldif())
        subprocess.run(
            [slapadd, "-f", str(config), "-l", str(ldif)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        # -d keeps slapd in the foreground; "stats" logs each connection and operation.
        argv = [slapd, "-f", str(config), "-h", f"{self.uri}/", "-d", "stats"]
        super().__init__(argv, workdir / "slapd.log", port)

    def wharf_variables(self) -> dict[str, str]:
        """The ``WHARF_LDAP_*`` values that point Wharf at this directory."""
        return {
            "WHARF_LDAP_SERVER_URI": self.uri,
            "WHARF_LDAP_BIND_DN": BIND_DN,
            "WHARF_LDAP_BIND_PASSWORD": BIND_PASSWORD,
            "WHARF_LDAP_USER_BASE": PEOPLE,
            "WHARF_LDAP_GROUP_BASE": GROUPS,
            "WHARF_LDAP_TIMEOUT": "5",
        }

    def modify(self, dn: str, changes: list[tuple[int, str, list[bytes]]]) -> None:
        """Change an entry as the directory's administrator (python-ldap's modlist)."""
        import ldap

        connection = ldap.initialize(self.uri)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
        try:
            connection.modify_s(dn, changes)
        finally:
            connection.unbind_s()


@pytest.fixture(scope="session")
def slapd(tmp_path_factory) -> Iterator[SlapdServer]:
    """slapd as a child on a free loopback port with the test directory (:func:`directory_ldif`)."""
    slapd_path = _which("slapd") or require_tool("slapd")
    slapadd_path = _which("slapadd") or require_tool("slapadd")
    server = SlapdServer(slapd_path, slapadd_path, tmp_path_factory.mktemp("slapd"))
    server.start()
    yield server
    server.stop()


def _which(name: str) -> str | None:
    """slapd lives in /usr/sbin, which a plain user's PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
