"""Masking credentials in any text proj prints, logs or records (stdlib ``re`` only: errors.py uses it)."""
from __future__ import annotations

import re

# A URL runs to the next whitespace or the next ``scheme://`` (two URLs glued by a comma are two URLs).
URL_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<rest>(?:(?![a-z][a-z0-9+.-]*://)\S)*)", re.IGNORECASE)
_DELIMS = "/?#"
MASK = "***"


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

    return URL_RE.sub(hide, text)
