"""``--artifacts-destination s3://bucket/prefix``: artifact places in an object store through fsspec and s3fs
(imported only when such a destination is used), with the same four operations as a local place."""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, TypeVar, cast
from urllib.parse import unquote, urlparse

from proj.errors import ProjError, UnsafePath, UsageError
from proj.paths import shorten
from proj.server.artifact_paths import UPLOAD_PREFIX, Entry, Spooled, join
from proj.settings import expand_user

log = logging.getLogger("proj.server")

SCHEMES = ("s3",)
# MLflow's own variable first (its servers and clients read it), then the AWS SDKs' standard one
ENDPOINT_ENVS = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")
_NO_BUCKET = "specified bucket does not exist"
# Short connection timeouts and few retries: a request meeting a dead endpoint is answered 503 in seconds (the
# client retries it), instead of the SDK's default minute of attempts.
_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}
T = TypeVar("T")


class ObjectStoreError(ProjError):
    """The object store failed a request: unreachable (503, the client retries), or refused the server's
    credentials or lost its bucket (500); one line, never a secret."""

    def __init__(self, message: str, error_code: str = "INTERNAL_ERROR") -> None:
        super().__init__(message)
        self.error_code = error_code


def is_remote(text: str) -> bool:
    """Whether ``text`` is a URI with a scheme (``s3://``, ``gs://``...) rather than a local path."""
    scheme = urlparse(text).scheme
    return len(scheme) > 1 and "://" in text  # a one-letter scheme is a Windows drive


def destination(text: str) -> Path | Bucket:
    """``--artifacts-destination``: a local folder (made absolute; ``file:///dir`` too) or ``s3://bucket[/prefix]``;
    any other scheme is one UsageError naming the valid ones. The bucket is not contacted here (Bucket.check is)."""
    if not is_remote(text):
        return expand_user(text, "--artifacts-destination").resolve()
    parsed = urlparse(text)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):  # file:///dir, as MLflow accepts
        return expand_user(unquote(parsed.path), "--artifacts-destination").resolve()
    if parsed.scheme not in SCHEMES:
        raise UsageError(f"--artifacts-destination {shorten(text)!r}: the scheme {parsed.scheme!r} is not supported; "
                         "give a local directory (or file:///dir) or s3://bucket[/prefix]")
    if not parsed.netloc or parsed.query or parsed.fragment or "@" in parsed.netloc:
        raise UsageError(f"--artifacts-destination {shorten(text)!r}: give it as s3://bucket[/prefix] (no user, "
                         "query or fragment; credentials come from the AWS_* variables)")
    prefix = parsed.path.strip("/")
    bad = [p for p in prefix.split("/") if p in ("", ".", "..")] if prefix else []
    if bad or "\\" in prefix:
        raise UsageError(f"--artifacts-destination {shorten(text)!r}: the prefix must be plain names separated by "
                         "'/' (no empty, '.' or '..' parts)")
    return Bucket(parsed.netloc, prefix)


def endpoint_url() -> str | None:
    return next((os.environ[name] for name in ENDPOINT_ENVS if os.environ.get(name)), None)


def _shown(url: str | None) -> str:
    """The endpoint as said in a message: without any user or password in it."""
    if not url:
        return "AWS's default S3 endpoint"
    parsed = urlparse(url)
    return parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else "")).geturl() \
        if parsed.hostname else url


def safe_key(rel: str) -> str:
    """``rel`` as the part of a key below a place; UnsafePath for anything that could leave it (an S3 key is a
    plain string: a ``..`` part would be taken literally by S3 but means "up" to every tool that syncs it)."""
    if not rel:
        return ""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in rel or "\0" in rel:
        raise UnsafePath(f"artifact path {shorten(repr(rel))} would leave its artifact folder; refusing it")
    return rel


class Bucket:
    """``s3://bucket/prefix``: the filesystem (made on first use in each process, never shared across a fork)
    and every key below the prefix. Credentials and region come from the usual AWS variables, the endpoint from
    MLFLOW_S3_ENDPOINT_URL or AWS_ENDPOINT_URL."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._fs: Any = None
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return f"s3://{join(self.bucket, self.prefix)}"

    def __repr__(self) -> str:
        return f"Bucket({str(self)!r})"

    @property
    def fs(self) -> Any:
        with self._lock:
            if self._fs is None:
                try:  # only here: `proj`'s other commands never pay for fsspec, s3fs and botocore
                    import s3fs
                except ImportError:
                    raise UsageError(f"--artifacts-destination {self}: s3fs is not installed; install proj[s3] "
                                     "(pip install 'proj[s3]')") from None

                client: dict[str, Any] = {}
                url = endpoint_url()
                if url:
                    client["endpoint_url"] = url
                if os.environ.get("AWS_DEFAULT_REGION"):
                    client["region_name"] = os.environ["AWS_DEFAULT_REGION"]
                # no listings cache: another worker process (or proj run) may have changed the bucket meanwhile
                self._fs = s3fs.S3FileSystem(client_kwargs=client, config_kwargs=_CONFIG, use_listings_cache=False,
                                             skip_instance_cache=True)
            return self._fs

    def key(self, rel: str) -> str:
        """The full ``bucket/prefix/rel`` s3fs names an object by (``rel`` checked by safe_key)."""
        return join(self.bucket, self.prefix, safe_key(rel))

    def place(self, prefix: str) -> RemotePlace:
        return RemotePlace(self, safe_key(prefix))

    def check(self) -> None:
        """Once at start-up: the endpoint answers, the credentials are accepted and the bucket exists; else one
        ObjectStoreError naming which (so the server never listens over an artifact store it cannot use)."""
        url = endpoint_url()
        where = f"--artifacts-destination {self}"
        try:
            self.fs.call_s3("head_bucket", Bucket=self.bucket)
        except FileNotFoundError:
            raise ObjectStoreError(f"{where}: bucket {self.bucket!r} does not exist at {_shown(url)} (create it, "
                                   "or check MLFLOW_S3_ENDPOINT_URL / AWS_ENDPOINT_URL)") from None
        except PermissionError:
            raise ObjectStoreError(f"{where}: {_shown(url)} refused the credentials for bucket {self.bucket!r} "
                                   "(check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and "
                                   "the bucket's policy)") from None
        except Exception as exc:  # noqa: BLE001 - botocore's own classes, imported only with s3fs
            raise ObjectStoreError(f"{where}: {_failure(exc, url)}") from None

    def call(self, what: str, action: Callable[[], T]) -> T:
        """``action`` with the object store's failures said as one ObjectStoreError (FileNotFoundError of a
        missing key passes through; a missing bucket does not)."""
        try:
            return action()
        except FileNotFoundError as exc:
            if _NO_BUCKET in str(exc).lower():
                log.warning("artifact store %s: %s failed: the bucket does not exist", self, what)
                raise ObjectStoreError(f"the artifact store's bucket {self.bucket!r} does not exist any more; "
                                       f"{what} failed") from None
            raise
        except ProjError:
            raise
        except PermissionError:
            log.warning("artifact store %s: %s refused (access denied)", self, what)
            raise ObjectStoreError(f"the artifact store refused the server's credentials or access ({what} "
                                   "failed); see the server's log") from None
        except Exception as exc:  # noqa: BLE001 - botocore/aiohttp/fsspec failures: said in one line, logged
            log.warning("artifact store %s: %s failed: %s", self, what, type(exc).__name__)
            raise ObjectStoreError(f"the artifact store is unavailable ({what} failed: "
                                   f"{_failure(exc, endpoint_url())}); retry later",
                                   "TEMPORARILY_UNAVAILABLE" if _unreachable(exc) else "INTERNAL_ERROR") from None

    def fetch(self, rel: str, into: Path) -> bool:
        """Copy the folder ``rel`` into the empty local folder ``into`` when it holds an ``MLmodel`` (a model a
        client uploaded, to be registered); False when it does not. Keys that would land outside ``into`` are
        refused, never followed."""
        base = self.key(rel)
        fs = self.fs
        if not self.call("reading a model", lambda: fs.isfile(f"{base}/MLmodel")):
            return False
        keys: list[str] = self.call("listing a model", lambda: fs.find(base + "/"))
        for key in keys:
            if not key.startswith(base + "/"):
                continue
            name = safe_key(key[len(base) + 1:])
            if name.rsplit("/", 1)[-1].startswith(UPLOAD_PREFIX):
                continue
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            self.call("reading a model", lambda k=key, t=target: fs.get_file(k, str(t)))  # type: ignore[misc]
        return True


def _unreachable(exc: BaseException) -> bool:
    """A connection that failed or timed out (the endpoint down or unreachable), as opposed to a refusal."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"ConnectionError", "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                         "FSTimeoutError", "ClientConnectorError", "ServerDisconnectedError", "ClientOSError",
                         "ClientPayloadError", "HTTPClientError"})


def _failure(exc: BaseException, url: str | None) -> str:
    if _unreachable(exc):
        return f"cannot reach {_shown(url)} (set MLFLOW_S3_ENDPOINT_URL or AWS_ENDPOINT_URL to the S3 endpoint)"
    if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    return f"{type(exc).__name__}: {shorten(str(exc).splitlines()[0] if str(exc) else '', 200)}"


@dataclass(frozen=True)
class RemotePlace:
    """One artifact root in the bucket (``prefix`` below the bucket's own prefix): open, list, delete, upload,
    as artifact_paths does for a local folder; every key built from an already-checked relative path."""

    bucket: Bucket
    prefix: str

    def key(self, rest: str) -> str:
        return self.bucket.key(join(self.prefix, safe_key(rest)))

    def open_file(self, rest: str) -> tuple[BinaryIO, int] | None:
        key = self.key(rest)
        fs = self.bucket.fs
        try:
            info = self.bucket.call("reading an artifact", lambda: fs.info(key))
        except FileNotFoundError:
            return None
        if info.get("type") == "directory":
            raise UsageError(f"Artifact path refers to a directory, not a file: '{shorten(rest)}'")
        size = int(info.get("size") or 0)
        # streamed: s3fs reads ranges of the object as the response is sent, never the whole of it at once
        fh = self.bucket.call("reading an artifact", lambda: fs.open(key, "rb", size=size, cache_type="none"))
        return cast(BinaryIO, _Guarded(fh, self.bucket)), size

    def list_dir(self, rest: str) -> list[Entry] | None:
        key = self.key(rest)
        fs = self.bucket.fs
        try:
            found: list[dict[str, Any]] = self.bucket.call("listing artifacts", lambda: fs.ls(key, detail=True))
        except FileNotFoundError:
            return None
        entries: dict[str, Entry] = {}
        for item in found:
            name = str(item.get("name", "")).rstrip("/")
            if name == key:
                if item.get("type") != "directory":
                    return None  # a file, not a folder
                continue
            if not name.startswith(key + "/"):
                continue
            leaf = name[len(key) + 1:]
            if not leaf or "/" in leaf or leaf.startswith(UPLOAD_PREFIX) or leaf in (".", ".."):
                continue
            is_dir = item.get("type") == "directory"
            entries[leaf] = Entry(leaf, is_dir, None if is_dir else int(item.get("size") or 0))
        return sorted(entries.values(), key=lambda e: e.name)

    def exists(self, rest: str) -> bool:
        key = self.key(rest)
        fs = self.bucket.fs
        return bool(self.bucket.call("reading artifacts", lambda: fs.exists(key)))

    def delete(self, rest: str) -> None:
        """The object ``rest`` and every object below ``rest/`` (the whole root's when ``rest`` is empty); only
        keys that really start with it are removed (never a sibling that merely shares its name's start)."""
        key = self.key(rest)
        fs = self.bucket.fs
        below: list[str] = self.bucket.call("listing artifacts", lambda: fs.find(key + "/"))
        doomed = [k for k in below if k.startswith(key + "/")]
        if rest and self.bucket.call("reading artifacts", lambda: fs.isfile(key)):
            doomed.append(key)
        if doomed:
            self.bucket.call("deleting artifacts", lambda: fs.rm(doomed))

    def upload(self, rest: str) -> RemoteUpload:
        return RemoteUpload(self, rest)


class _Guarded:
    """A remote file whose reads fail as one ObjectStoreError (a response already begun is cut off instead)."""

    def __init__(self, fh: Any, bucket: Bucket) -> None:
        self._fh = fh
        self._bucket = bucket

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._bucket.call("reading an artifact", lambda: self._fh.read(size))
        return data

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _Guarded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteUpload(Spooled):
    """A file being received for an object store: spooled to a local temp file while the body arrives, then sent
    with ONE put to its final key (s3fs's put_file: a single PutObject, or for a large file a multipart upload
    that S3 makes visible only when it is completed, and that s3fs aborts on failure). An S3 object appears
    whole or not at all: an upload cut off (or a server that dies) leaves nothing under the key."""

    def __init__(self, place: RemotePlace, rest: str) -> None:
        if not rest.rpartition("/")[2]:
            raise UsageError("an artifact upload needs a file name, not the artifact root")
        self.place = place
        self.rest = rest
        self.key = place.key(rest)
        fs = place.bucket.fs
        if place.bucket.call("checking an upload", lambda: fs.isdir(self.key)):
            raise UsageError(f"artifact {shorten(repr(rest))} is a folder; it cannot be overwritten by a file")
        fd, self.tmp = tempfile.mkstemp(prefix=UPLOAD_PREFIX, suffix=".tmp")
        self._spool_to(fd)

    def commit(self) -> None:
        try:
            self.file.close()
            fs = self.place.bucket.fs
            self.place.bucket.call("storing an artifact", lambda: fs.put_file(self.tmp, self.key))
        finally:
            self._drop()

    def abort(self) -> None:
        self.file.close()
        self._drop()

    def _drop(self) -> None:
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass
