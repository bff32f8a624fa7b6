"""The console through HTTP (Starlette's TestClient on the real app, a real journal with real photos):
its safety (session, CSRF, Origin, Host, image ids, escaping, no secrets) and its decisions, which
must change the journal exactly as the CLI's do."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crosswatch.console.security import SESSION_COOKIE, hash_password
from crosswatch.emulator import Emulator, EmulatorServer
from crosswatch.models import JobState
from tests.conftest import run_cli, wait_until
from tests.console_helpers import Console, console_config, drop_photos, every_platform_config, make_console, take_in


@pytest.fixture
def console(workspace: dict[str, Path]) -> Iterator[Console]:
    made = make_console(console_config(workspace))
    drop_photos(workspace, 3)
    take_in(made.config)
    yield made
    made.close()


def job_ids(console: Console, target: str | None = None) -> list[int]:
    with console.journal() as journal:
        return [j.id for j in journal.jobs(target=target)]


def state_of(console: Console, job_id: int) -> JobState:
    with console.journal() as journal:
        job = journal.job(job_id)
        assert job is not None
        return job.state


PAGES = ["/", "/queue", "/posted", "/needs-you", "/accounts", "/images/job/1", "/images/photo/1/thumb",
         "/static/console.css", "/static/console.js", "/queue?page=2", "/nowhere"]
POSTS = ["/jobs/1/approve", "/jobs/1/reject", "/jobs/1/edit", "/jobs/1/retry", "/jobs/1/resolve",
         "/jobs/1/post-now", "/check/1", "/accounts/x/signin"]


# -- safety ------------------------------------------------------------------------------------------


def test_without_a_session_every_route_answers_the_sign_in_page_and_nothing_else(console: Console) -> None:
    for path in PAGES:
        response = console.client.get(path, follow_redirects=False)
        assert response.status_code == 401, path
        assert "crosswatch console" in response.text and 'data-field="signin"' in response.text, path
        assert "data-job-card" not in response.text and "Test photo" not in response.text, path
        assert response.headers["content-type"].startswith("text/html"), path
    for path in POSTS:
        response = console.post(path, {"csrf": "x", "caption": "hello"})
        assert response.status_code == 403, path
    assert all(state_of(console, job_id) is JobState.AWAITING_APPROVAL for job_id in job_ids(console))


def test_a_sign_in_token_is_used_once_and_becomes_a_strict_http_only_cookie(console: Console) -> None:
    token = console.state.sessions.new_token()
    response = console.client.get(f"/signin?token={token}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert token not in cookie
    assert console.client.get("/queue").status_code == 200
    console.client.cookies.clear()
    again = console.client.get(f"/signin?token={token}", follow_redirects=False)
    assert again.status_code == 401 and "used already" in again.text
    assert console.client.get("/queue").status_code == 401
    assert console.client.get("/signin?token=guessed", follow_redirects=False).status_code == 401


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(console: Console) -> None:
    csrf = console.sign_in()
    job_id = job_ids(console)[0]
    for data in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}):
        response = console.post(f"/jobs/{job_id}/approve", data)
        assert response.status_code == 403, data
        assert "CSRF" in response.text
    assert console.post(f"/check/{job_id}", {"caption": "x"}).status_code == 403
    assert state_of(console, job_id) is JobState.AWAITING_APPROVAL
    assert console.post(f"/jobs/{job_id}/approve", {"csrf": csrf}).status_code == 303
    assert state_of(console, job_id) is JobState.READY


def test_a_post_from_another_origin_is_refused(console: Console) -> None:
    csrf = console.sign_in()
    job_id = job_ids(console)[0]
    for headers in ({"Origin": "http://evil.example"}, {"Origin": f"http://127.0.0.1:{console.port + 1}"},
                    {"Origin": "null"}, {"Referer": "http://evil.example/page"}):
        response = console.client.post(f"/jobs/{job_id}/approve", data={"csrf": csrf}, headers=headers,
                                       follow_redirects=False)
        assert response.status_code == 403, headers
    assert state_of(console, job_id) is JobState.AWAITING_APPROVAL
    # A form posted by the console's own page (the browser sends the Referer without an Origin): taken.
    ok = console.client.post(f"/jobs/{job_id}/approve", data={"csrf": csrf},
                             headers={"Referer": f"{console.base}/queue"}, follow_redirects=False)
    assert ok.status_code == 303


def test_a_foreign_host_header_is_refused_even_with_a_session(console: Console) -> None:
    console.sign_in()
    assert console.client.get("/queue").status_code == 200
    port = console.port
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1",
                 f"127.0.0.1.evil.example:{port}", f"localhost.evil.example:{port}"):
        response = console.client.get("/queue", headers={"Host": host})
        assert response.status_code == 421, host
        assert "data-job-card" not in response.text
    assert console.client.get("/queue", headers={"Host": f"localhost:{port}"}).status_code == 200


def test_images_are_served_by_id_only(console: Console, workspace: dict[str, Path]) -> None:
    console.sign_in()
    with console.journal() as journal:
        photo_ids = [p.id for p, _s, _r in journal.photos()]
        jobs = journal.jobs()
    thumb = console.client.get(f"/images/photo/{photo_ids[0]}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content.startswith(b"\xff\xd8")
    prepared = console.client.get(f"/images/job/{jobs[0].id}")
    assert prepared.status_code == 200 and prepared.content.startswith(b"\xff\xd8")
    (workspace["state"] / "secret.txt").write_text("not for the web")
    for path in ("/images/photo/999/thumb", "/images/job/999", "/images/photo/../secret.txt",
                 "/images/photo/%2e%2e%2fsecret.txt/thumb", "/images/job/..%2F..%2Fsecret.txt",
                 "/images/photo/1/../../secret.txt", f"/images/photo/{photo_ids[0]}/full", "/static/../app.py",
                 "/static/..%2fapp.py", "/static/app.py", "/images/photo/-1/thumb", "/images/job/1.0"):
        response = console.client.get(path)
        assert response.status_code == 404, path
        assert b"not for the web" not in response.content


def test_a_thumbnail_is_made_once_and_never_on_a_page_view(console: Console) -> None:
    console.sign_in()
    thumbs = console.config.state_dir / "console" / "thumbs"
    assert console.client.get("/queue").status_code == 200
    assert not thumbs.exists() or not list(thumbs.iterdir()), "a page view made thumbnails"
    with console.journal() as journal:
        photo_id = journal.photos()[0][0].id
    first = console.client.get(f"/images/photo/{photo_id}/thumb").content
    made = list(thumbs.iterdir())
    assert len(made) == 1
    stamp = made[0].stat().st_mtime_ns
    assert console.client.get(f"/images/photo/{photo_id}/thumb").content == first
    assert made[0].stat().st_mtime_ns == stamp, "the cached thumbnail was made again"


def test_a_caption_with_markup_renders_as_text(console: Console) -> None:
    csrf = console.sign_in()
    job_id = job_ids(console, "outbox")[0]
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'
    response = console.post(f"/jobs/{job_id}/edit", {"csrf": csrf, "caption": evil, "alt_text": "<b>alt</b>"})
    assert response.status_code == 303, response.text
    page = console.client.get("/queue").text
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>alt</b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;b&gt;alt&lt;/b&gt;" in page


def test_no_token_or_secret_reaches_any_page(workspace: dict[str, Path], emulator: Emulator) -> None:
    with EmulatorServer(emulator) as server:
        config = console_config(workspace, url=server.url)
        token = emulator.mint_x_token()
        result = run_cli("auth", "import", "x", config=config, input=json.dumps(token))
        assert result.returncode == 0, result.stderr
        drop_photos(workspace, 2)
        console = make_console(config)
        try:
            take_in(console.config)
            console.sign_in()
            pages = {path: console.client.get(path).text for path in ("/queue", "/posted", "/needs-you", "/accounts")}
        finally:
            console.close()
    assert 'data-account="x"' in pages["/accounts"]
    assert re.search(r'data-field="sign-in">signed in<', pages["/accounts"])
    for path, text in pages.items():
        for secret in (token["access_token"], token["refresh_token"]):
            assert secret not in text, path


def test_the_sign_in_button_runs_the_oauth_flow_of_auth_login(workspace: dict[str, Path], emulator: Emulator) -> None:
    with EmulatorServer(emulator) as server:
        console = make_console(console_config(workspace, url=server.url))
        try:
            csrf = console.sign_in()
            before = console.client.get("/accounts").text
            assert re.search(r'data-field="sign-in">sign-in needed<', before)
            assert 'data-action="sign-in" data-target="x"' in before
            started = console.post("/accounts/x/signin", {"csrf": csrf})
            assert started.status_code == 303
            authorize = started.headers["location"]
            assert authorize.startswith(f"{server.url}/i/oauth2/authorize?")
            # The browser at the platform: it approves and sends the browser to crosswatch's listener.
            approved = httpx.get(authorize)
            assert approved.status_code in (302, 303), approved.text
            assert httpx.get(approved.headers["location"]).status_code == 200
            signed = re.compile(r'data-field="sign-in">signed in<(?s:.*)data-field="sign-in-result">signed in as')
            wait_until(lambda: bool(signed.search(console.client.get("/accounts").text)), timeout=30)
            after = console.client.get("/accounts").text
        finally:
            console.close()
    issued = emulator.snapshot()["x"]["access_tokens"]
    assert issued and all(t["token"] not in after for t in issued)


def test_beyond_loopback_the_console_needs_a_password_and_warns_about_tls(workspace: dict[str, Path]) -> None:
    from crosswatch.config import load_config
    from crosswatch.console.security import PASSWORD_KEY
    from crosswatch.console.server import make_console as serve
    from crosswatch.errors import UsageError

    config = load_config(console_config(workspace))
    store: dict[str, str] = {}

    class Store:
        def get(self, name: str) -> str | None:
            return store.get(name)

    with pytest.raises(UsageError, match="--set-password"):
        serve(config, host="0.0.0.0", port=0, store=Store())
    store[PASSWORD_KEY] = hash_password("correct horse")
    warnings: list[str] = []
    served = serve(config, host="0.0.0.0", port=0, store=Store(), warn=warnings.append)
    try:
        assert warnings and "TLS" in warnings[0]
    finally:
        served.sock.close()


def test_the_console_password_signs_in_and_a_wrong_one_does_not(workspace: dict[str, Path]) -> None:
    console = make_console(console_config(workspace), password=hash_password("correct horse"))
    try:
        _password_sign_in(console)
    finally:
        console.close()


def _password_sign_in(console: Console) -> None:
    page = console.client.get("/queue")
    assert page.status_code == 401 and 'name="password"' in page.text
    wrong = console.post("/signin", {"password": "wrong horse"})
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    assert console.post("/signin", {"password": "correct horse"}, Origin="http://evil.example").status_code == 403
    right = console.post("/signin", {"password": "correct horse"})
    assert right.status_code == 303
    assert console.client.get("/queue").status_code == 200


# -- decisions ---------------------------------------------------------------------------------------


def test_approve_and_reject_through_the_console_change_the_journal(console: Console) -> None:
    csrf = console.sign_in()
    first, second = job_ids(console)[:2]
    page = console.client.get("/queue").text
    assert f'data-action="approve" data-job="{first}"' in page
    assert console.post(f"/jobs/{first}/approve", {"csrf": csrf}).status_code == 303
    assert console.post(f"/jobs/{second}/reject", {"csrf": csrf}).status_code == 303
    assert state_of(console, first) is JobState.READY
    assert state_of(console, second) is JobState.REJECTED
    with console.journal() as journal:
        assert journal.events(first)[-1]["detail"] == "approved"
        assert journal.job(second).reason == "rejected by hand (console)"  # type: ignore[union-attr]
    # Approving again is refused, in one line on the page, and changes nothing.
    again = console.post(f"/jobs/{first}/approve", {"csrf": csrf})
    assert again.status_code == 409 and "not awaiting approval" in again.text
    assert state_of(console, first) is JobState.READY


def test_an_x_caption_over_280_is_refused_and_nothing_is_saved(console: Console) -> None:
    csrf = console.sign_in()
    job_id = job_ids(console, "x")[0]
    with console.journal() as journal:
        before = journal.job(job_id)
    too_long = "A caption that runs on. " * 12 + "é" * 10  # 298 by X's count
    response = console.post(f"/jobs/{job_id}/edit", {"csrf": csrf, "caption": too_long, "alt_text": "fine"})
    assert response.status_code == 400
    card = response.text.split(f'data-job-card="{job_id}"', 1)[1].split("</article>", 1)[0]
    error = re.search(r'data-field="error">([^<]*)<', card)
    assert error and "limit is 280" in error.group(1) and "18 over" in error.group(1)
    assert "A caption that runs on." in card  # what was typed is kept in the form to fix
    with console.journal() as journal:
        after = journal.job(job_id)
    assert after == before, "a refused edit saved something"
    live = console.post(f"/check/{job_id}", {"csrf": csrf, "caption": too_long, "alt_text": ""})
    assert live.json()["length"] == 298 and live.json()["limit"] == 280 and "limit is 280" in live.json()["error"]


def test_a_valid_edit_is_saved_and_sends_an_approved_job_back_to_approval(console: Console) -> None:
    csrf = console.sign_in()
    job_id = job_ids(console, "x")[0]
    assert console.post(f"/jobs/{job_id}/approve", {"csrf": csrf}).status_code == 303
    assert state_of(console, job_id) is JobState.READY
    caption = "Harbour at dawn, by hand #harbour"
    response = console.post(f"/jobs/{job_id}/edit", {"csrf": csrf, "caption": caption, "alt_text": "Boats in fog"})
    assert response.status_code == 303
    assert state_of(console, job_id) is JobState.AWAITING_APPROVAL
    page = console.client.get("/queue").text
    card = page.split(f'data-job-card="{job_id}"', 1)[1].split("</article>", 1)[0]
    assert f'data-field="caption">{caption}<' in card
    assert 'data-field="alt-text">Boats in fog<' in card
    assert re.search(r'data-field="length">\s*33 / 280', card)
    with console.journal() as journal:
        job = journal.job(job_id)
        assert job is not None and job.data["edit"] == {"caption": caption, "alt_text": "Boats in fog"}
        assert "needs approval again" in journal.events(job_id)[-1]["detail"]
    # The CLI sees the same caption (one library).
    queue = run_cli("queue", config=console.config.source)
    assert caption in queue.stdout


def test_retry_resolve_and_post_now_through_the_console(console: Console) -> None:
    csrf = console.sign_in()
    failed, doubtful, waiting = job_ids(console)[:3]
    with console.journal() as journal:
        for job_id in (failed, doubtful, waiting):
            journal.transition(job_id, JobState.READY)
        journal.transition(failed, JobState.FAILED, reason="the platform refused the image")
        journal.transition(doubtful, JobState.IN_FLIGHT, step="create_post", intent=True)
        journal.transition(doubtful, JobState.IN_DOUBT, reason="timed out; X did not answer")
        journal.transition(waiting, JobState.READY, next_attempt_at=9e9, reason="scheduled: outside the windows")
    page = console.client.get("/queue").text
    assert f'data-action="retry" data-job="{failed}"' in page
    assert f'data-action="resolve" data-job="{doubtful}" name="posted" value="yes"' in page
    assert "timed out; X did not answer" in page.split(f'data-job-card="{doubtful}"', 1)[1].split("</article>")[0]
    assert console.post(f"/jobs/{failed}/retry", {"csrf": csrf}).status_code == 303
    assert console.post(f"/jobs/{doubtful}/resolve", {"csrf": csrf, "posted": "no"}).status_code == 303
    assert console.post(f"/jobs/{waiting}/post-now", {"csrf": csrf}).status_code == 303
    with console.journal() as journal:
        retried, resolved, now = journal.job(failed), journal.job(doubtful), journal.job(waiting)
    assert retried is not None and retried.state is JobState.READY and retried.attempts == 0
    assert resolved is not None and resolved.state is JobState.READY
    assert now is not None and now.state is JobState.READY and now.data.get("post_now") is True
    assert now.next_attempt_at < 9e9
    # Resolve without saying what was found is refused.
    with console.journal() as journal:
        journal.transition(doubtful, JobState.IN_FLIGHT, step="create_post", intent=True)
        journal.transition(doubtful, JobState.IN_DOUBT, reason="timed out")
    assert console.post(f"/jobs/{doubtful}/resolve", {"csrf": csrf}).status_code == 409
    assert console.post(f"/jobs/{doubtful}/resolve", {"csrf": csrf, "posted": "yes"}).status_code == 303
    assert state_of(console, doubtful) is not JobState.IN_DOUBT


def test_every_page_shows_the_needs_you_count(console: Console) -> None:
    console.sign_in()
    for path in ("/queue", "/posted", "/needs-you", "/accounts"):
        page = console.client.get(path).text
        found = re.search(r"data-needs-you-count>(\d+)<", page)
        # 6 jobs await approval; the X target is not signed in.
        assert found and found.group(1) == "7", path
    needs = console.client.get("/needs-you").text
    assert needs.count('data-need="awaiting approval"') == 6
    assert 'data-need="sign-in needed"' in needs


def test_holds_retries_from_needs_you_and_posted_and_a_resolution_by_hand_show_on_their_pages(
        console: Console) -> None:
    csrf = console.sign_in()
    failing, rejecting, held = job_ids(console, "x")
    outbox = job_ids(console, "outbox")[0]
    with console.journal() as journal:
        journal.transition(failing, JobState.READY)
        journal.transition(failing, JobState.FAILED, reason="X refused the post")
        journal.set_hold("x", time.time() + 3600, "budget", "the monthly budget is spent")
        journal.transition(outbox, JobState.READY)
        journal.transition(outbox, JobState.IN_FLIGHT, step="write", intent=True)
        journal.transition(outbox, JobState.IN_DOUBT, reason="no answer")
    hold = re.search(rf'data-job-card="{held}".*?data-field="hold">([^<]*)<', console.client.get("/queue").text, re.S)
    assert hold and hold.group(1).startswith("budget hold until ") and "budget is spent" in hold.group(1)
    # A failed job is retried from the "needs you" list, which the browser comes back to.
    needs = console.client.get("/needs-you").text
    assert f'data-action="retry" data-job="{failing}"' in needs
    retried = console.post(f"/jobs/{failing}/retry", {"csrf": csrf, "back": "needs-you"})
    assert retried.status_code == 303 and retried.headers["location"] == "/needs-you"
    assert state_of(console, failing) is JobState.READY
    # A rejected job leaves the queue; Posted's state filter finds it, with Retry.
    assert console.post(f"/jobs/{rejecting}/reject", {"csrf": csrf}).status_code == 303
    assert f'data-job-card="{rejecting}"' not in console.client.get("/queue").text
    rejected = console.client.get("/posted?state=rejected").text
    assert f'data-posted-job="{rejecting}"' in rejected and "rejected by hand (console)" in rejected
    assert f'data-action="retry" data-job="{rejecting}"' in rejected
    assert f'data-posted-job="{rejecting}"' not in console.client.get("/posted").text
    again = console.post(f"/jobs/{rejecting}/retry", {"csrf": csrf, "back": "posted"})
    assert again.status_code == 303 and again.headers["location"] == "/posted?state=rejected"
    assert state_of(console, rejecting) is JobState.READY
    # An in-doubt job the person marks as posted says so on Posted.
    assert console.post(f"/jobs/{outbox}/resolve", {"csrf": csrf, "posted": "yes"}).status_code == 303
    assert state_of(console, outbox) is JobState.DONE
    row = console.client.get("/posted").text.split(f'data-posted-job="{outbox}"', 1)[1].split("</li>", 1)[0]
    assert 'data-field="posted-state">posted (marked by hand)<' in row
    # The form's way back is one of the console's pages, never an address from the request.
    elsewhere = console.post(f"/jobs/{failing}/post-now", {"csrf": csrf, "back": "https://evil.example/"})
    assert elsewhere.headers["location"].startswith("/queue")


def test_every_control_that_changes_a_job_carries_data_action_and_data_job(console: Console) -> None:
    csrf = console.sign_in()
    failing, rejecting, _waiting = job_ids(console, "x")
    with console.journal() as journal:
        journal.transition(failing, JobState.READY)
        journal.transition(failing, JobState.FAILED, reason="X refused the post")
    assert console.post(f"/jobs/{rejecting}/reject", {"csrf": csrf}).status_code == 303
    seen = set()
    for path in ("/queue", "/needs-you", "/posted?state=rejected"):
        forms = re.findall(r'<form method="post" action="/jobs/(\d+)/([\w-]+)"[^>]*>(.*?)</form>',
                           console.client.get(path).text, re.S)
        assert forms, path
        for job_id, action, body in forms:
            buttons = re.findall(r"<button[^>]*>", body)
            assert buttons, (path, job_id, action)
            for tag in buttons:
                assert f'data-action="{action}"' in tag and f'data-job="{job_id}"' in tag, (path, tag)
            seen.add((path, action))
    assert {("/needs-you", "retry"), ("/posted?state=rejected", "retry"), ("/queue", "edit"),
            ("/queue", "approve"), ("/queue", "retry")} <= seen, seen


def test_an_app_password_target_shows_the_terminal_command_instead_of_the_button(
        workspace: dict[str, Path]) -> None:
    console = make_console(every_platform_config(workspace))
    try:
        console.sign_in()
        page = console.client.get("/accounts").text
        bluesky = page.split('data-account="bluesky"', 1)[1].split("</section>", 1)[0]
        assert "<code>crosswatch auth login bluesky</code>" in bluesky and "data-action" not in bluesky
        for oauth in ("x", "mastodon", "instagram", "threads"):
            assert f'data-action="sign-in" data-target="{oauth}"' in page
        refused = console.post("/accounts/bluesky/signin", {"csrf": console.csrf()})
        assert refused.status_code == 303 and refused.headers["location"] == "/accounts"
        assert "app password" in console.client.get("/accounts").text
    finally:
        console.close()
