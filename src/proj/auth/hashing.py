"""Passwords and API tokens as slow salted hashes (scrypt, stdlib) compared in constant time."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt's cost: 2**14 x 8 x 128 bytes = 16 MiB and ~50 ms per check (OWASP's minimum for scrypt), so a
# stolen auth.db costs an attacker that per guess; the server caches a success briefly (see server.auth).
_N, _R, _P = 2 ** 14, 8, 1
_SCHEME = "scrypt"
TOKEN_PREFIX = "proj_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def hash_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash``: the parameters travel with the hash, so they can be raised later."""
    salt = secrets.token_bytes(16)
    return f"{_SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(_derive(secret, salt, _N, _R, _P))}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        derived = _derive(secret, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, _unb64(digest))


def dummy_verify(secret: str) -> None:
    """The cost of a check for a user who does not exist, so timing does not tell which names exist."""
    verify_secret(secret, _DUMMY)


_DUMMY = f"{_SCHEME}${_N}${_R}${_P}${_b64(b'0' * 16)}${_b64(b'0' * 32)}"


def new_token() -> tuple[str, str, str]:
    """(token id, secret, the token as given to its user: ``proj_<id>_<secret>``)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return token_id, secret, f"{TOKEN_PREFIX}{token_id}_{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a token this server made, None for anything else."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX):].partition("_")
    if not sep or len(token_id) != 12 or not secret:
        return None
    return token_id, secret
