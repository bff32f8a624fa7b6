"""Media hosts: a folder, a real S3 protocol endpoint (moto's server mode) and a user command."""

from __future__ import annotations

import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from crosswatch.config import MediaHostConfig
from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.errors import ConfigError
from crosswatch.hosting import (
    CommandHost,
    DirectoryHost,
    MediaHost,
    MediaHostError,
    S3Host,
    build_host,
    join_url,
    substitute,
    verify_host,
)

PHOTO = Path(__file__).resolve().parent / "data" / "photos" / "et-Canon.jpg"
KEY = "0123456789abcdef-7.jpg"


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "prepared.jpg"
    path.write_bytes(PHOTO.read_bytes())
    return path


# ---------------------------------------------------------------------------------------------------
# directory


def test_directory_host_copies_and_serves_under_public_url(tmp_path: Path, photo: Path) -> None:
    served = tmp_path / "www" / "cw"
    host = build_host(MediaHostConfig(type="directory", path=served, public_url="https://photos.example/cw/"))
    assert isinstance(host, DirectoryHost) and isinstance(host, MediaHost)
    url = host.put(photo, KEY)
    assert url == f"https://photos.example/cw/{KEY}"
    copy = served / KEY
    assert copy.read_bytes() == photo.read_bytes()
    # Readable by a web server running as another user, whatever our umask; no temp file left.
    assert stat.S_IMODE(copy.stat().st_mode) == 0o644
    assert sorted(p.name for p in served.iterdir()) == [KEY]
    host.put(photo, KEY)  # repeating overwrites
    host.delete(KEY)
    assert not copy.exists()
    host.delete(KEY)  # deleting what is gone is fine


def test_directory_host_leaves_no_partial_file_when_the_copy_fails(tmp_path: Path) -> None:
    served = tmp_path / "www"
    host = DirectoryHost(served, "https://photos.example")
    with pytest.raises(MediaHostError, match=r"cannot copy missing\.jpg"):
        host.put(tmp_path / "missing.jpg", KEY)
    assert list(served.iterdir()) == []


@pytest.mark.parametrize("key", ["../escape.jpg", "a/b.jpg", "", ".hidden", "x..y.jpg"])
def test_keys_cannot_leave_the_folder(tmp_path: Path, photo: Path, key: str) -> None:
    host = DirectoryHost(tmp_path / "www", "https://photos.example")
    with pytest.raises(MediaHostError, match="refusing media host key"):
        host.put(photo, key)


def test_join_url() -> None:
    assert join_url("https://a.example/x", "k.jpg") == "https://a.example/x/k.jpg"
    assert join_url("https://a.example/x//", "k k.jpg") == "https://a.example/x/k%20k.jpg"


# ---------------------------------------------------------------------------------------------------
# s3 against moto's real S3 protocol endpoint


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        # ThreadedMotoServer.stop() shuts the loop down but leaves the socket open.
        if server._server is not None:
            server._server.server_close()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fake credentials through boto3's usual chain (environment); moto accepts any.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def bucket(s3_endpoint: str, aws_credentials: None) -> str:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="photos")
    return "photos"


def test_s3_host_presigned_url_serves_the_exact_bytes(s3_endpoint: str, bucket: str, photo: Path) -> None:
    cfg = MediaHostConfig(type="s3", bucket=bucket, prefix="cw/", endpoint_url=s3_endpoint,
                          region="us-east-1", expires_seconds=600)
    host = build_host(cfg)
    assert isinstance(host, S3Host)
    url = host.put(photo, KEY)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url
    with httpx.Client() as client:
        fetched = client.get(url)
        assert fetched.status_code == 200
        assert fetched.content == photo.read_bytes()
        assert fetched.headers["content-type"] == "image/jpeg"
        # Without the signature the object is not public.
        assert client.get(url.split("?")[0]).status_code == 403
        host.delete(KEY)
        assert client.get(url).status_code == 404
    host.delete(KEY)  # already gone: still fine


def test_s3_host_with_public_url_skips_presigning(s3_endpoint: str, bucket: str, photo: Path) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    host = S3Host(client, bucket, "pub/", public_url="https://cdn.example")
    assert host.put(photo, KEY) == f"https://cdn.example/pub/{KEY}"
    assert client.get_object(Bucket=bucket, Key=f"pub/{KEY}")["Body"].read() == photo.read_bytes()


def test_s3_errors_are_media_host_errors(s3_endpoint: str, aws_credentials: None, photo: Path) -> None:
    host = build_host(MediaHostConfig(type="s3", bucket="no-such-bucket", endpoint_url=s3_endpoint,
                                      region="us-east-1"))
    with pytest.raises(MediaHostError, match=r"no-such-bucket.*NoSuchBucket"):
        host.put(photo, KEY)


def test_s3_without_credentials_says_where_they_go(s3_endpoint: str, photo: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    host = build_host(MediaHostConfig(type="s3", bucket="photos", endpoint_url=s3_endpoint,
                                      region="us-east-1"))
    with pytest.raises(MediaHostError, match=r"no AWS credentials found.*never in the config"):
        host.put(photo, KEY)


def test_s3_without_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ConfigError, match=r"pip install 'crosswatch\[s3\]'"):
        build_host(MediaHostConfig(type="s3", bucket="photos"))


# ---------------------------------------------------------------------------------------------------
# command


def copy_command(dest: Path) -> tuple[str, ...]:
    script = "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])"
    return (sys.executable, "-c", script, "{path}", f"{dest}/{{key}}")


def test_command_host_runs_the_upload_and_delete_commands(tmp_path: Path, photo: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    delete = (sys.executable, "-c", "import os, sys; os.remove(sys.argv[1])", f"{remote}/{{key}}")
    host = build_host(MediaHostConfig(type="command", command=copy_command(remote), delete_command=delete,
                                      public_url="https://files.example/up"))
    assert isinstance(host, CommandHost)
    assert host.put(photo, KEY) == f"https://files.example/up/{KEY}"
    assert (remote / KEY).read_bytes() == photo.read_bytes()
    host.delete(KEY)
    assert not (remote / KEY).exists()


def test_command_host_uses_no_shell(tmp_path: Path, photo: Path) -> None:
    marker = tmp_path / "pwned"
    record = tmp_path / "args.txt"
    script = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"
    host = CommandHost((sys.executable, "-c", script, str(record), f"$(touch {marker}) {{path}}"),
                       "https://files.example")
    host.put(photo, KEY)
    assert record.read_text() == f"$(touch {marker}) {photo}"
    assert not marker.exists()


def test_command_failure_reports_the_last_stderr_line(tmp_path: Path, photo: Path) -> None:
    script = ("import sys; print('progress', file=sys.stderr); print('403 Forbidden', file=sys.stderr); "
              "sys.exit(3)")
    host = CommandHost((sys.executable, "-c", script, "{path}"), "https://files.example")
    with pytest.raises(MediaHostError, match="exited with 3: 403 Forbidden"):
        host.put(photo, KEY)


def test_command_not_found_and_timeout(tmp_path: Path, photo: Path) -> None:
    missing = CommandHost(("/nonexistent/rclone", "{path}"), "https://files.example")
    with pytest.raises(MediaHostError, match="command not found: /nonexistent/rclone"):
        missing.put(photo, KEY)
    slow = CommandHost((sys.executable, "-c", "import time; time.sleep(10)", "{path}"), "https://files.example",
                       timeout=0.3)
    with pytest.raises(MediaHostError, match="took more than"):
        slow.put(photo, KEY)


def test_command_without_delete_command_leaves_removal_to_the_user(photo: Path) -> None:
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: object) -> object:
        import subprocess

        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    host = CommandHost(("up", "{path}", "r:{key}"), "https://files.example", run=fake_run)  # type: ignore[arg-type]
    host.put(photo, KEY)
    host.delete(KEY)
    assert calls == [["up", str(photo), f"r:{KEY}"]]


def test_substitute_is_plain_replacement() -> None:
    argv = substitute(["{path}", "x{key}y", "{0}", "{other}"], Path("/p.jpg"), "k")
    assert argv == ["/p.jpg", "xky", "{0}", "{other}"]


# ---------------------------------------------------------------------------------------------------
# configuration errors


@pytest.mark.parametrize(("cfg", "key"), [
    (MediaHostConfig(type="directory", public_url="https://a.example"), "media_host.path"),
    (MediaHostConfig(type="directory", path=Path("/tmp/x")), "media_host.public_url"),
    (MediaHostConfig(type="directory", path=Path("/tmp/x"), public_url="ftp://a"), "media_host.public_url"),
    (MediaHostConfig(type="s3"), "media_host.bucket"),
    (MediaHostConfig(type="s3", bucket="b", expires_seconds=0), "media_host.expires_seconds"),
    (MediaHostConfig(type="command", public_url="https://a.example"), "media_host.command"),
    (MediaHostConfig(type="command", command=("rclone", "copy"), public_url="https://a.example"),
     "media_host.command"),
    (MediaHostConfig(type="command", command=("rclone", "{path}")), "media_host.public_url"),
])
def test_config_errors_name_the_key(cfg: MediaHostConfig, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_host(cfg)
    assert caught.value.key == key


# ---------------------------------------------------------------------------------------------------
# verify_host (for `crosswatch doctor`)


def test_verify_host_through_a_real_web_server(tmp_path: Path) -> None:
    served = tmp_path / "www"
    served.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with EmulatorServer(Emulator(hosted_dir=served)) as server, httpx.Client() as client:
        good = DirectoryHost(served, server.url + "/_emulator/hosted/")
        assert verify_host(good, client, scratch) == f"{server.url}/_emulator/hosted/crosswatch-probe.txt"
        wrong = DirectoryHost(served, server.url + "/elsewhere/")
        with pytest.raises(MediaHostError, match=r"answered HTTP 4\d\d without it; check that public_url"):
            verify_host(wrong, client, scratch)
    assert list(served.iterdir()) == [] and list(scratch.iterdir()) == []


def test_verify_host_unreachable_url(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    host = DirectoryHost(tmp_path / "www", f"http://127.0.0.1:{port}/x")
    with httpx.Client() as client, pytest.raises(MediaHostError, match=r"cannot be fetched.*check public_url"):
        verify_host(host, client, tmp_path)


def test_verify_s3_host(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    host = build_host(MediaHostConfig(type="s3", bucket=bucket, endpoint_url=s3_endpoint, region="us-east-1"))
    with httpx.Client() as client:
        assert "X-Amz-Signature=" in verify_host(host, client, tmp_path)
