"""Git URL handling: split ``#subdir``, take credentials out, mask them, and name the cache entry."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

_SCP_LIKE = re.compile(r"^(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>(?!//).*)$")
# A URL runs to the next whitespace or the next ``scheme://`` (two URLs glued by a comma are two URLs).
_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<rest>(?:(?![a-z][a-z0-9+.-]*://)\S)*)", re.IGNORECASE)
_DELIMS = "/?#"
MASK = "***"


@dataclass(frozen=True)
class GitUrl:
    """A repository URL split into what may be stored and what must not be."""

    url: str  # credential-free: safe for records, cache names and .git/config
    username: str | None = None  # only for http(s): given to git through GIT_ASKPASS, never stored
    password: str | None = None

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password)

    @property
    def secrets(self) -> list[str]:
        """Every spelling of the credentials that could show up in git's output."""
        found = {s for s in (self.username, self.password) if s and len(s) > 2}
        found |= {quote(s, safe="") for s in found}
        return sorted(found, key=len, reverse=True)


def userinfo_end(rest: str) -> int | None:
    """Where the userinfo ends in ``rest`` (what follows ``scheme://``, up to whitespace): the index of
    its ``@``, or None when there is no userinfo.

    Decided on the raw text, before any URL parsing, because a password may hold an unencoded ``/``,
    ``#``, ``?`` or ``@`` that a parser would take for the path, fragment, query or host. The rule:
    the *last* ``@`` whose left side either has none of ``/?#`` (a well-formed userinfo) or has a
    ``:`` before the first of them (``user:pass`` whose password holds a delimiter). A plain URL with
    an ``@`` further on (``https://host/repo@v1``) has no ``:`` before its first ``/``, so it is left
    alone. When in doubt this masks too much (``host:port/r#sub@x``), never too little.
    """
    end = None
    for index, char in enumerate(rest):
        if char != "@":
            continue
        left = rest[:index]
        cut = min((left.find(d) for d in _DELIMS if d in left), default=-1)
        if cut < 0 or ":" in left[:cut]:
            end = index
    return end


def take_userinfo(raw: str) -> tuple[str, str | None]:
    """``scheme://userinfo@rest`` -> (``scheme://rest``, ``userinfo``); other strings come back unchanged."""
    match = _URL.match(raw.strip())
    if match is None:
        return raw, None
    rest = raw.strip()[match.end("scheme"):]
    end = userinfo_end(rest)
    if end is None:
        return raw, None
    return match.group("scheme") + rest[end + 1:], rest[:end]


def split_fragment(uri: str) -> tuple[str, str | None]:
    """``url#sub/dir`` -> (url, "sub/dir"); a bare ``#`` means no subdir."""
    url, _, subdir = uri.partition("#")
    return url, (subdir or None)


def split_git_uri(uri: str) -> tuple[GitUrl, str | None]:
    """What the user typed -> (the repository URL with its credentials apart, the ``#subdir``).

    The credentials are taken off the raw string first, so a ``#`` in a password is not a subdir."""
    bare, userinfo = take_userinfo(uri)
    raw, subdir = split_fragment(bare)
    return _with_userinfo(raw, userinfo), subdir


def parse_git_url(url: str) -> GitUrl:
    """Separate the credentials of an ``http(s)://user:token@host/...`` URL from the URL itself.

    Any userinfo of an http(s) URL counts as secret (GitHub accepts a bare token as the user name);
    for ssh the user name (``git@``) is part of the address and is kept, a password is dropped.
    """
    if _SCP_LIKE.match(url):
        return GitUrl(url)
    bare, userinfo = take_userinfo(url)
    return _with_userinfo(bare, userinfo)


def _with_userinfo(url: str, userinfo: str | None) -> GitUrl:
    if userinfo is None or _SCP_LIKE.match(url):
        return GitUrl(url)
    parts = urlsplit(url)
    user, _, password = userinfo.partition(":")
    if parts.scheme.lower() in ("http", "https"):
        clean = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        return GitUrl(clean, unquote(user) or None, unquote(password) or None)
    netloc = f"{user}@{parts.netloc}" if user else parts.netloc
    return GitUrl(urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), None, unquote(password) or None)


def mask_url(text: str) -> str:
    """Replace the userinfo of every URL in ``text`` with ``***`` (for ssh-like schemes, only a password).

    The one masking function for anything proj prints, logs or records; see :func:`userinfo_end`."""

    def hide(match: re.Match[str]) -> str:
        scheme, rest = match.group("scheme"), match.group("rest")
        end = userinfo_end(rest)
        if end is None:
            return match.group()
        if scheme.lower().rpartition("+")[2].startswith("http"):  # git+https too: any http userinfo may be a token
            return f"{scheme}{MASK}@{rest[end + 1:]}"
        user, sep, _ = rest[:end].partition(":")  # ssh and the like: the user is part of the address
        return f"{scheme}{user}:{MASK}@{rest[end + 1:]}" if sep else match.group()

    return _URL.sub(hide, text)


def mask_text(text: str, url: GitUrl) -> str:
    """Git's own output with every credential spelling removed (git may echo the URL it was given)."""
    text = mask_url(text)
    for secret in url.secrets:
        text = text.replace(secret, MASK)
    return text


def normalise(url: str) -> str:
    """One spelling per repository, for the cache key: lower-case scheme/host, no ``.git``, no ``/``."""
    scp = _SCP_LIKE.match(url)
    if scp:
        url = f"ssh://{scp['user']}@{scp['host']}/{scp['path'].lstrip('/')}"
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    path = path[:-4] if path.endswith(".git") else path
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


def cache_key(url: str) -> str:
    """A readable, collision-free directory name for a (credential-free) repository URL."""
    norm = normalise(url)
    parts = urlsplit(norm)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{parts.hostname or 'local'}{parts.path}").strip("-.")
    return f"{readable[-60:].lstrip('-.') or 'repo'}-{hashlib.sha256(norm.encode()).hexdigest()[:12]}"


def file_url(path: str) -> str:
    """The ``file://`` URL of a local repository path (how ``path -v VERSION`` is fetched)."""
    return "file://" + quote(path)


