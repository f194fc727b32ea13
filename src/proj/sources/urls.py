"""Git URL handling: split ``#subdir``, take credentials out, mask them, and name the cache entry."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from proj.redact import MASK, URL_RE, mask_url, userinfo_end

_SCP_LIKE = re.compile(r"^(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>(?!//).*)$")


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


def take_userinfo(raw: str) -> tuple[str, str | None]:
    """``scheme://userinfo@rest`` -> (``scheme://rest``, ``userinfo``); other strings come back unchanged."""
    match = URL_RE.match(raw.strip())
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


