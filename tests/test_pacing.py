"""Pacing with a fake clock: a backlog far beyond a daily quota is posted across days, none early,
none lost, none refused.

In-process (Runner + emulator on httpx.MockTransport + real SQLite), all on one ManualClock that the
rig moves forward whenever nothing is due, so ten days of platform time take seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crosswatch.emulator import EmulatorSettings
from crosswatch.models import JobState
from tests.fault_harness import make_rig
from tests.openapi_check import XOpenAPI

DAY = 86400.0
BACKLOG = 500
PER_DAY = 50


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` inside any half-open window of ``window`` seconds."""
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.slow
def test_a_backlog_of_500_is_paced_by_instagrams_quota_and_max_per_day(
        workspace: dict[str, Path], x_openapi: XOpenAPI) -> None:
    # Instagram: the platform's own quota (read from content_publishing_limit), nothing in the config.
    # X: no platform cap at all, only the user's targets.x.max_per_day.
    rig = make_rig(workspace, x_openapi,
                   settings=EmulatorSettings(ig_container_processing_seconds=0.2, ig_publish_quota=PER_DAY),
                   per_target={"x": {"max_per_day": PER_DAY}})
    try:
        start = rig.clock()
        rig.add_photos(BACKLOG)
        days_seen: list[int] = []

        def progress() -> None:
            day = int((rig.clock() - start) // DAY)
            if not days_seen or days_seen[-1] != day:
                days_seen.append(day)

        rig.drive(on_round=progress)

        assert rig.states() == {"done": 2 * BACKLOG}
        ig_times = [m.timestamp for m in rig.emulator.ig_posts()]
        x_times = [p.created_at for p in rig.emulator.x_posts()]
        assert len(ig_times) == BACKLOG and len(x_times) == BACKLOG
        assert len({m.caption for m in rig.emulator.ig_posts()}) == BACKLOG
        assert len({p.text for p in rig.emulator.x_posts()}) == BACKLOG
        # Never flooded: no rolling day carries more than the quota, on either platform...
        assert most_in_any_window(ig_times, DAY) == PER_DAY
        assert most_in_any_window(x_times, DAY) == PER_DAY
        # ...and Instagram never had to refuse a publish: the quota was read, not run into.
        publishes = rig.emulator.requests_log("ig.media_publish")
        assert {r.status for r in publishes} == {200}
        assert len(publishes) == BACKLOG
        # It was read now and then, not before every post.
        quota_reads = len(rig.emulator.requests_log("ig.publishing_limit"))
        assert 0 < quota_reads < BACKLOG / 2
        # Not paced slower than needed either: ten quotas' worth takes nine days and a bit.
        elapsed = max(ig_times) - start
        assert 9 * DAY <= elapsed < 10.5 * DAY
        assert len(days_seen) >= 10
        # Waiting was never counted as failing.
        assert all(job.state is JobState.DONE and job.attempts <= 3 for job in rig.jobs())
        rig.recorder.assert_clean()
    finally:
        rig.close()
