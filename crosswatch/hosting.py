"""Media hosts: make the prepared JPEG reachable at a public URL for the minutes Meta needs to fetch it.

Instagram's API takes no uploaded bytes; Meta's servers fetch ``image_url``. A host puts the file
somewhere public and returns its URL (``put``), and removes it again after publishing (``delete``).

- ``DirectoryHost``: copy into a folder the user's web server serves; URL = ``public_url`` + key.
- ``S3Host``: any S3-compatible bucket; a presigned GET URL (or ``public_url`` + object key when the
  bucket is public). boto3 is an optional extra; credentials come from boto3's own chain.
- ``CommandHost``: run the user's upload command (for example rclone) as an argv list without a shell,
  ``{path}`` and ``{key}`` substituted; URL = ``public_url`` + key.

Keys are chosen by crosswatch (see ``platforms.meta_graph.hosted_key``) and are checked to be plain file
names, so a key can never climb out of the folder or the prefix.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from crosswatch.config import MediaHostConfig
from crosswatch.errors import ConfigError, CrosswatchError

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
COMMAND_TIMEOUT_SECONDS = 300.0
# Hosted copies must be readable by the web server, whatever the daemon's umask.
PUBLIC_FILE_MODE = 0o644


class MediaHostError(CrosswatchError):
    """Putting or removing a hosted copy failed (the runner retries later)."""


@runtime_checkable
class MediaHost(Protocol):
    def put(self, path: Path, key: str) -> str:
        """Make ``path`` public under ``key``; return the URL Meta will fetch."""
        ...

    def delete(self, key: str) -> None:
        """Remove the copy stored under ``key``; removing a missing copy is not an error."""
        ...


def check_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key) or ".." in key:
        raise MediaHostError(f"refusing media host key {key!r}: only letters, digits, '.', '_' and '-'")
    return key


def join_url(public_url: str, key: str) -> str:
    """``public_url`` + key (or S3 object key), one slash between them, percent-encoded but for ``/``."""
    return public_url.rstrip("/") + "/" + urllib.parse.quote(key, safe="/")


# ---------------------------------------------------------------------------------------------------
# directory


class DirectoryHost:
    def __init__(self, path: Path, public_url: str) -> None:
        self.path = path
        self.public_url = public_url

    def put(self, path: Path, key: str) -> str:
        target = self.path / check_key(key)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            _atomic_copy(path, target)
        except OSError as exc:
            raise MediaHostError(f"cannot copy {path.name} into {self.path}: {exc.strerror or exc}") from exc
        return join_url(self.public_url, key)

    def delete(self, key: str) -> None:
        try:
            (self.path / check_key(key)).unlink(missing_ok=True)
        except OSError as exc:
            raise MediaHostError(f"cannot remove {key} from {self.path}: {exc.strerror or exc}") from exc


def _atomic_copy(source: Path, target: Path) -> None:
    """Copy so that a web server never serves a half-written file: temp file, fsync, rename."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp creates the file 0600; the web server (another user) must be able to read it.
        os.chmod(tmp, PUBLIC_FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------------
# s3


class S3Host:
    """An S3-compatible bucket. ``client`` is a boto3 S3 client (built by ``build_host``)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", expires_seconds: int = 3600,
                 public_url: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.expires_seconds = expires_seconds
        self.public_url = public_url

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, path: Path, key: str) -> str:
        object_key = self.object_key(key)
        try:
            self.client.upload_file(str(path), self.bucket, object_key,
                                    ExtraArgs={"ContentType": "image/jpeg"})
            if self.public_url:
                return join_url(self.public_url, object_key)
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": object_key},
                ExpiresIn=self.expires_seconds)
        except Exception as exc:
            raise MediaHostError(f"cannot upload {path.name} to s3://{self.bucket}/{object_key}: "
                                 f"{_boto_reason(exc)}") from exc
        return url

    def delete(self, key: str) -> None:
        object_key = self.object_key(key)
        try:
            # S3 answers success for a key that is not there, which is what delete promises.
            self.client.delete_object(Bucket=self.bucket, Key=object_key)
        except Exception as exc:
            raise MediaHostError(f"cannot delete s3://{self.bucket}/{object_key}: "
                                 f"{_boto_reason(exc)}") from exc


def _boto_reason(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "NoCredentialsError":
        return ("no AWS credentials found; set them the usual boto3 way (AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or AWS_PROFILE), never in the config")
    return f"{name}: {exc}"


def make_s3_client(endpoint_url: str | None, region: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config as BotoConfig
    except ImportError:
        raise ConfigError("media_host type s3 needs boto3: pip install 'crosswatch[s3]'",
                          key="media_host.type") from None
    # A session of our own: boto3's default session caches credentials process-wide. SigV4 presigned
    # URLs work on every S3-compatible service (and are required in newer AWS regions).
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region,
                          config=BotoConfig(signature_version="s3v4"))


# ---------------------------------------------------------------------------------------------------
# command

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class CommandHost:
    def __init__(self, command: Sequence[str], public_url: str, delete_command: Sequence[str] = (),
                 timeout: float = COMMAND_TIMEOUT_SECONDS, run: Runner = subprocess.run) -> None:
        self.command = tuple(command)
        self.delete_command = tuple(delete_command)
        self.public_url = public_url
        self.timeout = timeout
        self._run = run

    def put(self, path: Path, key: str) -> str:
        self._call(self.command, path, check_key(key), "upload")
        return join_url(self.public_url, key)

    def delete(self, key: str) -> None:
        if self.delete_command:
            self._call(self.delete_command, None, check_key(key), "delete")

    def _call(self, template: tuple[str, ...], path: Path | None, key: str, what: str) -> None:
        argv = substitute(template, path, key)
        try:
            done = self._run(argv, capture_output=True, text=True, timeout=self.timeout,
                             stdin=subprocess.DEVNULL, check=False)
        except FileNotFoundError:
            raise MediaHostError(f"media host {what} command not found: {argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise MediaHostError(f"media host {what} command {argv[0]} took more than "
                                 f"{self.timeout:.0f} s") from None
        except OSError as exc:
            raise MediaHostError(f"cannot run media host {what} command {argv[0]}: {exc}") from None
        if done.returncode != 0:
            last = _last_line(done.stderr) or _last_line(done.stdout)
            raise MediaHostError(f"media host {what} command {argv[0]} exited with {done.returncode}"
                                 + (f": {last}" if last else ""))


def substitute(template: Sequence[str], path: Path | None, key: str) -> list[str]:
    """Replace ``{path}`` and ``{key}`` in each argument (plain replacement, no format mini-language)."""
    values = {"{path}": str(path) if path is not None else "", "{key}": key}
    argv = []
    for arg in template:
        for placeholder, value in values.items():
            arg = arg.replace(placeholder, value)
        argv.append(arg)
    return argv


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


# ---------------------------------------------------------------------------------------------------
# doctor: does a hosted file come back at its URL?

PROBE_KEY = "crosswatch-probe.txt"


def verify_host(host: MediaHost, client: httpx.Client, scratch_dir: Path) -> str:
    """Put a small probe file, fetch it back at its URL, remove it; returns the URL it was served at.

    Raises MediaHostError saying which part failed. Reachable from here does not prove reachable
    from Meta's servers, but it catches a wrong folder, URL, bucket or command.
    """
    probe = scratch_dir / PROBE_KEY
    body = f"crosswatch media host probe {os.getpid()}-{time.time_ns()}".encode()
    probe.write_bytes(body)
    try:
        url = host.put(probe, PROBE_KEY)
        try:
            fetched = client.get(url)
        except httpx.HTTPError as exc:
            raise MediaHostError(f"the probe was stored but {url.split('?')[0]} cannot be fetched "
                                 f"({type(exc).__name__}); check public_url") from None
        finally:
            host.delete(PROBE_KEY)
    finally:
        probe.unlink(missing_ok=True)
    if fetched.status_code != 200 or fetched.content != body:
        raise MediaHostError(f"the probe was stored but {url.split('?')[0]} answered HTTP "
                             f"{fetched.status_code} without it; check that public_url serves the folder")
    return url


# ---------------------------------------------------------------------------------------------------
# from the config


def build_host(cfg: MediaHostConfig, *, s3_client: Any = None) -> MediaHost:
    """The media host ``cfg`` describes; ConfigError when a needed key is missing."""
    if cfg.type == "directory":
        if cfg.path is None:
            raise _missing("path", "the folder your web server serves")
        return DirectoryHost(cfg.path, _need_public_url(cfg))
    if cfg.type == "s3":
        if not cfg.bucket:
            raise _missing("bucket", "the bucket name")
        if cfg.expires_seconds <= 0:
            raise ConfigError("must be more than 0", key="media_host.expires_seconds")
        client = s3_client if s3_client is not None else make_s3_client(cfg.endpoint_url, cfg.region)
        return S3Host(client, cfg.bucket, cfg.prefix, cfg.expires_seconds, cfg.public_url)
    if cfg.type == "command":
        if not cfg.command:
            raise _missing("command", "the upload command as a list, e.g. [rclone, copyto, '{path}', "
                                      "'remote:photos/{key}']")
        if not any("{path}" in arg for arg in cfg.command):
            raise ConfigError("must mention {path} (the file to upload)", key="media_host.command")
        return CommandHost(cfg.command, _need_public_url(cfg), cfg.delete_command)
    raise ConfigError(f"unknown media host type {cfg.type!r}", key="media_host.type")


def _need_public_url(cfg: MediaHostConfig) -> str:
    if not cfg.public_url:
        raise _missing("public_url", "the https:// address under which the files are served")
    if not cfg.public_url.startswith(("https://", "http://")):
        raise ConfigError("must start with https:// (Meta fetches the image from it)",
                          key="media_host.public_url")
    return cfg.public_url


def _missing(key: str, what: str) -> ConfigError:
    return ConfigError(f"is required for this media host type: {what}", key=f"media_host.{key}")
