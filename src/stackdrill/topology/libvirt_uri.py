"""Which libvirt URIs a topology may name for a host (`hosts[].libvirt_uri`).

The URI goes to `libvirt.open()` as root. libvirt runs a program named in a URI
(`qemu+ext:///system?command=/path`, `?netcat=`, `?command=` on ssh), connects to any
socket (`?socket=`), reads any key (`?keyfile=`, `?pkipath=`) or skips host-key checks
(`?no_verify=1`, `?known_hosts_verify=ignore`). A topology file must not be able to
choose any of that, so only what a lab needs is accepted: the local `qemu:///system`
and `qemu:///session`, libvirt's in-process test driver (`test:///default` or a
`test:///path.xml`), and `qemu+ssh://` or `qemu+tls://` to a named host's `/system`.
Query parameters are refused unless the user (never the file) opts in with
STACKDRILL_ALLOW_LIBVIRT_URI_PARAMS=1, read at validation time.

One socket is allowed without that opt-in: a second local daemon that stackdrill's own
scripts/second-libvirtd.sh started, `qemu+unix:///system?socket=/run/stackdrill/hv/NAME/
libvirt-sock` exactly (NAME a short lowercase word). A file may pick which of those
daemons, never another path: the directory is root's, 0700 (the backend checks that
before it connects), so only root can have put a socket there.
"""

from __future__ import annotations

import ipaddress
import os
import re
from urllib.parse import parse_qsl, urlsplit

from stackdrill.echo import key_text, shown

ALLOW_PARAMS_ENV = "STACKDRILL_ALLOW_LIBVIRT_URI_PARAMS"
MAX_URI = 256
LOCAL_QEMU = ("qemu:///system", "qemu:///session")
HV_DIR = "/run/stackdrill/hv"  # stackdrill's own local daemons (scripts/second-libvirtd.sh)
HV_NAME = re.compile(r"[a-z][a-z0-9]{0,7}")
_HV_URI = re.compile(rf"qemu\+unix:///system\?socket={re.escape(HV_DIR)}/({HV_NAME.pattern})"
                     r"/libvirt-sock")
REMOTE_SCHEMES = ("qemu+ssh", "qemu+tls")
# libvirt's remote-driver parameters (docs/uri.rst): each overrides how or where it connects
REMOTE_PARAMS = frozenset({
    "name", "command", "socket", "auth", "netcat", "keyfile", "no_verify", "no_tty",
    "pkipath", "known_hosts", "known_hosts_verify", "sshauth", "mode", "proxy",
    "tls_priority"})
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def params_allowed() -> bool:
    return os.environ.get(ALLOW_PARAMS_ENV) == "1"


def local_hypervisor(uri: str) -> str | None:
    """NAME, when `uri` is one of stackdrill's own local daemons (see the module's note)."""
    match = _HV_URI.fullmatch(uri)
    return match.group(1) if match else None


def uri_problem(uri: str) -> str | None:
    """Why `uri` may not be used, or None when it may."""
    if len(uri) > MAX_URI or not uri.isprintable() or any(c.isspace() for c in uri):
        return f"not a libvirt URI a lab can use: {shown(uri)}"
    if local_hypervisor(uri) is not None:
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        return f"not a URI ({exc}): {shown(uri)}"
    if parts.fragment:
        return "a libvirt URI has no #fragment"
    query_problem = _query_problem(parts.query, parts.scheme) if parts.query else None
    if query_problem:
        return query_problem
    base = uri.split("?", 1)[0]
    if parts.scheme == "qemu":
        return None if base in LOCAL_QEMU else (
            f"{shown(uri)}: the local qemu driver is qemu:///system or qemu:///session")
    if parts.scheme == "test":
        if parts.netloc or not parts.path.startswith("/"):
            return f"{shown(uri)}: the test driver is test:///default or test:///FILE.xml"
        return None
    if parts.scheme in REMOTE_SCHEMES:
        return _remote_problem(parts.netloc, parts.hostname, parts.username, parts.password,
                               port, parts.path)
    return (f"transport {shown(parts.scheme)} is not allowed: use qemu:///system, "
            "qemu:///session, test:///..., qemu+ssh://HOST/system, qemu+tls://HOST/system "
            f"or a daemon of scripts/second-libvirtd.sh (qemu+unix:///system?socket={HV_DIR}"
            "/NAME/libvirt-sock)")


def _query_problem(query: str, scheme: str) -> str | None:
    """Parameters: libvirt's remote ones never (without the user's opt-in); others only
    on the in-process test driver, where libvirt ignores them."""
    if params_allowed():
        return None
    keys = [key for key, _ in parse_qsl(query, keep_blank_values=True)]
    remote = [key for key in keys if key.lower() in REMOTE_PARAMS]
    if remote or scheme != "test" or not keys:
        named = ", ".join(f"{key_text(k)}=" for k in (remote or keys)[:3]) or shown(query)
        return (f"query parameters ({named}) are not allowed in a topology: they change "
                f"how libvirt connects; set {ALLOW_PARAMS_ENV}=1 to allow them")
    return None


def _remote_problem(netloc: str, host: str | None, user: str | None, password: str | None,
                    port: int | None, path: str) -> str | None:
    if password is not None:
        return "a password does not belong in a topology's libvirt URI"
    if not host or not _named_host(host):
        return f"{shown(netloc)} is not a host name or address"
    if user is not None and not _USER.fullmatch(user):
        return f"{shown(user)} is not a user name"
    if port == 0:
        return "port 0 is not a port"
    if path != "/system":
        return f"{shown(path)}: a remote lab host is reached at /system"
    return None


def _named_host(host: str) -> bool:
    """A DNS name (no leading '-': ssh would read it as an option) or an IP address."""
    if len(host) <= 253 and _HOSTNAME.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
