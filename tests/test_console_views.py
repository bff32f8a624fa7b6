"""views.py: what the queue, posted, needs-you and accounts pages show, built from a real journal;
and a page costs the same number of SQL statements however many jobs it shows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from crosswatch import decisions, views
from crosswatch.auth import state as auth_state
from crosswatch.auth.tokens import TokenSet, save_tokens
from crosswatch.config import Config, load_config
from crosswatch.journal import Journal
from crosswatch.models import JobState
from crosswatch.platforms import registry
from crosswatch.secrets import SecretStore
from tests.conftest import run_cli
from tests.console_helpers import console_config, drop_photos, every_platform_config, take_in


def journal_with(workspace: dict[str, Path], photos: int, **overrides: Any) -> Config:
    config = load_config(console_config(workspace, **overrides))
    drop_photos(workspace, photos, real=False)
    take_in(config)
    return config


class Counter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, sql: str) -> None:
        self.statements.append(sql)


def mixed_states(journal: Journal) -> None:
    """Some jobs approved (ready, so the schedule's plan is read), one failed, one in doubt."""
    jobs = journal.jobs()
    for job in jobs[::2]:
        journal.transition(job.id, JobState.READY)
    journal.transition(jobs[0].id, JobState.FAILED, reason="refused")
    journal.transition(jobs[2].id, JobState.IN_FLIGHT, step="create_post", intent=True)
    journal.transition(jobs[2].id, JobState.IN_DOUBT, reason="no answer")


def test_a_queue_page_costs_the_same_statements_for_2_or_40_jobs_shown(workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 20, approval=["x"])
    counts = {}
    with Journal(config.journal_path) as journal:
        mixed_states(journal)
        counter = Counter()
        journal.trace(counter)
        for per_page in (1, 5, 20):
            counter.statements.clear()
            view = views.queue_page(config, journal, time.time(), page=1, per_page=per_page)
            assert sum(len(g.cards) for g in view.groups) == 2 * per_page
            counts[per_page] = len(counter.statements)
        journal.trace(None)
    assert counts[1] == counts[5] == counts[20], counts
    assert counts[1] <= 8, counts


def test_the_queue_view_groups_by_photo_with_caption_length_alt_text_and_actions(workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 3, approval=["x"])
    with Journal(config.journal_path) as journal:
        view = views.queue_page(config, journal, time.time())
        x_job = next(j for j in journal.jobs(target="x"))
    assert len(view.groups) == 3 and view.total_jobs == 6
    assert all(len(group.cards) == 2 for group in view.groups)
    card = next(c for g in view.groups for c in g.cards if c.id == x_job.id)
    assert card.state == "awaiting_approval" and card.limit == 280 and card.length is not None
    assert card.caption.startswith("Test photo") and card.alt_text.startswith("A flat test card")
    assert card.cost.startswith("$"), "X charges per post: the card says what"
    assert card.actions == ("approve", "reject", "edit", "post-now")
    outbox = next(c for g in view.groups for c in g.cards if c.target == "outbox")
    assert outbox.state == "ready" and outbox.planned == "now" and outbox.cost == ""
    assert outbox.actions == ("post-now", "edit")


def test_an_edit_shows_in_the_view_and_a_second_edit_keeps_the_first_ones_other_part(
        workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 1, approval=True)
    with Journal(config.journal_path) as journal:
        job_id = journal.jobs(target="x")[0].id
        decisions.edit(config, journal, job_id, caption="By hand", alt_text="Alt by hand")
        decisions.edit(config, journal, job_id, caption="By hand, again")
        card = next(c for g in views.queue_page(config, journal, time.time()).groups for c in g.cards
                    if c.id == job_id)
        events = journal.events(job_id)
    assert card.caption == "By hand, again" and card.alt_text == "Alt by hand" and card.edited
    assert card.length == len("By hand, again")
    assert [e["detail"] for e in events][-2:] == ["edited by hand (crosswatch edit)"] * 2


def test_needs_you_lists_approval_failures_doubt_holds_sign_in_and_expiring_tokens(
        workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 2, approval=True)
    store = SecretStore()
    now = time.time()
    sign_in = registry.sign_in("x")
    assert sign_in is not None
    save_tokens(store, "x", TokenSet(access_token="a", refresh_token=None, expires_at=now + 86400,
                                     obtained_at=now - 60, scopes=tuple(sign_in.scopes), username="ada"))
    with Journal(config.journal_path) as journal:
        mixed_states(journal)
        journal.set_hold("x", now + 3600, "budget", "the monthly budget is spent")
        accounts = views.accounts(config, store, journal.holds(now))
        needs = views.needs_you(journal, accounts, now)
    kinds = sorted(item.kind for item in needs.items)
    assert kinds == ["awaiting approval", "awaiting approval", "budget", "expiring soon", "failed", "in doubt"], kinds
    assert needs.count == 6
    assert accounts[0].account == "ada" and accounts[0].sign_in_text == "signed in"
    assert accounts[0].refreshed and "a" not in accounts[0].scopes.split()


def test_an_auth_hold_says_sign_in_needed_even_with_a_token(workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 1)
    store = SecretStore()
    save_tokens(store, "x", TokenSet(access_token="a", expires_at=None, username="ada"))
    with Journal(config.journal_path) as journal:
        journal.set_hold("x", time.time() + 600, "auth", "the X token was revoked; sign in again")
        accounts = views.accounts(config, store, journal.holds(time.time()))
    assert accounts[0].sign_in_text == "sign-in needed" and "revoked" in accounts[0].problem


def test_posted_lists_newest_first_with_filters_and_the_last_link_check(workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 3, approval=False)
    with Journal(config.journal_path) as journal:
        for job in journal.jobs():
            journal.transition(job.id, JobState.IN_FLIGHT, step="create_post")
            journal.transition(job.id, JobState.DONE, remote_id=f"r{job.id}",
                               permalink=f"https://example.com/{job.id}")
            time.sleep(0.002)
        first = journal.jobs()[0]
        journal.record_link_check(first.id, "broken", "the post is gone")
        every = views.posted_page(config, journal, views.PostedFilter())
        only_x = views.posted_page(config, journal, views.PostedFilter(target="x"))
        broken = views.posted_page(config, journal, views.PostedFilter(link_state="broken"))
        unchecked = views.posted_page(config, journal, views.PostedFilter(link_state="unchecked"))
        future = views.posted_page(config, journal, views.PostedFilter(since=time.time() + 60))
    assert [r.job_id for r in every] == sorted((r.job_id for r in every), reverse=True)
    assert len(every) == 6 and {r.target for r in only_x} == {"x"} and len(only_x) == 3
    assert [(r.job_id, r.link_state, r.link_detail) for r in broken] == [(first.id, "broken", "the post is gone")]
    assert len(unchecked) == 5 and future == []
    assert every[0].permalink.startswith("https://example.com/") and every[0].name.startswith("photo-")


# -- tokens that renew themselves do not alarm; holds, failures, rejections and resolutions by hand ---


def test_only_a_token_that_nothing_renews_is_listed_as_expiring_soon(workspace: dict[str, Path]) -> None:
    config = load_config(every_platform_config(workspace))
    store = SecretStore()
    now = time.time()
    day = 86400.0
    # Each expires within the week; only the one nothing renews needs the person.
    saved = {
        "x": TokenSet("a", refresh_token="r", expires_at=now + 3600, obtained_at=now - 3600),  # X rotation
        "threads": TokenSet("a", expires_at=now + 3 * day, obtained_at=now - 57 * day),  # long-lived refresh
        "bluesky": TokenSet("a", refresh_token="r", expires_at=now + 7000, obtained_at=now - 200),  # refreshSession
        "instagram": TokenSet("a", expires_at=now + 2 * day, obtained_at=now - 58 * day),  # long-lived refresh
        "mastodon": TokenSet("a", expires_at=now + 5 * day, obtained_at=now - day),  # Mastodon renews nothing
    }
    for name, tokens in saved.items():
        save_tokens(store, name, tokens)
    accounts = {a.target: a for a in views.accounts(config, store, {})}
    assert {name for name, a in accounts.items() if a.renews} == {"x", "threads", "bluesky", "instagram"}
    with Journal(config.journal_path) as journal:
        needs = views.needs_you(journal, list(accounts.values()), now)
    assert [(i.kind, i.target) for i in needs.items] == [("expiring soon", "mastodon")]
    # Without its refresh token an X token renews nothing; an expired Instagram token cannot be extended.
    save_tokens(store, "x", TokenSet("a", expires_at=now + 3600, obtained_at=now - 3600))
    assert not auth_state.renews_itself(config.targets["instagram"],
                                        TokenSet("a", expires_at=now - 1, obtained_at=now - 60 * day), now)
    x_alone = [a for a in views.accounts(config, store, {}) if a.target == "x"]
    with Journal(config.journal_path) as journal:
        assert [i.kind for i in views.needs_you(journal, x_alone, now).items] == ["expiring soon"]


def test_an_app_password_sign_in_shows_the_terminal_command_and_oauth_shows_the_button(
        workspace: dict[str, Path]) -> None:
    config = load_config(every_platform_config(workspace))
    commands = {a.target: a.sign_in_command for a in views.accounts(config, SecretStore(), {})}
    assert commands == {"x": "", "instagram": "", "threads": "", "mastodon": "",
                        "bluesky": "crosswatch auth login bluesky"}


def test_a_held_target_shows_its_hold_with_until_when_on_every_waiting_card(workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 2, approval=["x"])
    now = time.time()
    with Journal(config.journal_path) as journal:
        first = journal.jobs(target="x")[0]
        journal.transition(first.id, JobState.READY)
        journal.set_hold("x", now + 7200, "quota", "X's monthly post cap is used up")
        journal.set_hold("outbox", now + 60, "rate_limit", "the platform asked to slow down")
        cards = {c.id: c for g in views.queue_page(config, journal, now).groups for c in g.cards}
    for card in cards.values():
        if card.target == "x":
            assert card.hold == f"quota hold until {views.when(now + 7200)}: X's monthly post cap is used up"
        else:
            assert card.hold.startswith("rate limit hold until ") and "slow down" in card.hold
    assert cards[first.id].planned == views.when(now + 7200), "a ready job is planned for when the hold ends"


def test_failed_jobs_are_in_needs_you_with_retry_and_rejected_ones_on_posted_not_in_the_queue(
        workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 2, approval=True)
    now = time.time()
    with Journal(config.journal_path) as journal:
        failed, rejected = journal.jobs(target="x")
        journal.transition(failed.id, JobState.READY)
        journal.transition(failed.id, JobState.FAILED, reason="X refused the post")
        decisions.reject(journal, rejected.id, by="console")
        needs = views.needs_you(journal, [], now)
        queue_ids = {c.id for g in views.queue_page(config, journal, now).groups for c in g.cards}
        rows = views.posted_page(config, journal, views.PostedFilter(state="rejected"))
        posted = views.posted_page(config, journal, views.PostedFilter())
        cli = views.queue_lines(config, journal, now)
    [failure] = [i for i in needs.items if i.kind == "failed"]
    assert failure.job_id == failed.id and failure.actions == ("retry",) and "refused" in failure.text
    assert rejected.id not in queue_ids and failed.id in queue_ids
    assert [(r.job_id, r.state, r.reason, r.actions) for r in rows] == [
        (rejected.id, "rejected", "rejected by hand (console)", ("retry",))]
    assert posted == []
    assert not any(f"#{rejected.id} " in line for line in cli), "the CLI's queue agrees: no rejected job"


def test_the_cli_queue_lists_in_doubt_and_failed_jobs_as_the_console_queue_does(workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 3, approval=["x"])
    with Journal(config.journal_path) as journal:
        mixed_states(journal)
        now = time.time()
        cards = {c.id: c.state for g in views.queue_page(config, journal, now).groups for c in g.cards}
        lines = views.queue_lines(config, journal, now)
    listed = {int(line.split()[0][1:]) for line in lines if line.startswith("#")}
    assert listed == set(cards), (listed, cards)
    in_doubt = [job_id for job_id, state in cards.items() if state == "in_doubt"]
    assert in_doubt and any(line.startswith(f"#{in_doubt[0]} ") and "crosswatch resolve" in line for line in lines)


def test_a_job_resolved_by_hand_as_posted_says_so_on_posted(workspace: dict[str, Path]) -> None:
    config = journal_with(workspace, 1, approval=False)
    with Journal(config.journal_path) as journal:
        by_hand, by_daemon = journal.jobs(target="x")[0], journal.jobs(target="outbox")[0]
        for job in (by_hand, by_daemon):
            journal.transition(job.id, JobState.IN_FLIGHT, step="create_post", intent=True)
        journal.transition(by_hand.id, JobState.IN_DOUBT, reason="no answer")
        decisions.resolve(config, journal, by_hand.id, posted=True)
        # X's steps after the post (the reconciler's read-back) run, then it is done.
        assert journal.job(by_hand.id).state is JobState.READY  # type: ignore[union-attr]
        journal.transition(by_hand.id, JobState.IN_FLIGHT)
        journal.transition(by_hand.id, JobState.DONE, remote_id="r0")
        journal.transition(by_daemon.id, JobState.DONE, intent=False, remote_id="r1")
        rows = {r.job_id: r.state for r in views.posted_page(config, journal, views.PostedFilter())}
    assert rows == {by_hand.id: views.BY_HAND, by_daemon.id: "posted"}
    assert views.BY_HAND == "posted (marked by hand)"


def test_auth_status_says_which_tokens_crosswatch_renews_as_the_accounts_page_does(
        workspace: dict[str, Path]) -> None:
    config = every_platform_config(workspace)
    now = time.time()
    save_tokens(SecretStore(), "x", TokenSet("a", refresh_token="r", expires_at=now + 3600, obtained_at=now,
                                             username="ada"))
    save_tokens(SecretStore(), "mastodon", TokenSet("a", expires_at=now + 86400, obtained_at=now, username="ada"))
    shown = run_cli("auth", "status", config=config)
    assert shown.returncode == 0, shown.stderr
    lines = {line.split(":", 1)[0]: line for line in shown.stdout.splitlines()}
    assert lines["x"].endswith("(crosswatch renews it)") and "renews" not in lines["mastodon"]
