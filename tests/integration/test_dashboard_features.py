"""What the dashboard shows and does beyond the basics, over HTTP (Starlette's TestClient, a temp
SQLite bench, a real ``jobbench worker --burst`` for failures): the confirmation step before
every destructive action; scheduled jobs with their run time, run now and cancel; bulk retry and
delete; search by job id and method; counts on the status tabs; failed jobs grouped by error;
the overview's depth, latency, throughput and charts (from ``Broker.timeline``); one timestamp
format in the site's time zone with the relative time in its title; every record field on the
job page; error pages inside the layout.

The browser half (every page and action in Chromium, with screenshots) is
tests/acceptance/test_dashboard_pages.py.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
pytest.importorskip("python_multipart")

import jobbench  # noqa: E402
from jobbench.bench import Bench, init_bench  # noqa: E402
from jobbench.brokers.factory import close_brokers, get_broker  # noqa: E402
from jobbench.dashboard.app import create_app  # noqa: E402
from jobbench.jobs.record import JobRecord, full_id  # noqa: E402
from jobbench.sites import new_site  # noqa: E402

warnings.filterwarnings("ignore", message=".*httpx2.*")
from starlette.testclient import TestClient  # noqa: E402

ORIGIN = "http://localhost"
ROW = re.compile(r'<tr data-job="([^"]+)"')


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    bench = init_bench(tmp_path / "bench")
    new_site(bench, "s1")
    new_site(bench, "s2")
    bench.update_common_config({"allowed_job_modules": ["os", "json"], "default_site": "s1"})
    yield Bench(bench.path)
    close_brokers()


@pytest.fixture
def client(bench: Bench) -> TestClient:
    return TestClient(create_app(bench.path), base_url=ORIGIN, headers={"origin": ORIGIN})


def enqueue(bench: Bench, site: str = "s1", method: str = "os.getcwd", **kw: Any) -> str:
    with jobbench.site_context(site, bench.path) as local:
        job = jobbench.enqueue(method, **kw)
        local.db.commit()
        return str(job.id)


def later(bench: Bench, delay: float, site: str = "s1") -> str:
    with jobbench.site_context(site, bench.path) as local:
        job = jobbench.enqueue_in(delay, "os.getcwd")
        local.db.commit()
        return str(job.id)


def status(bench: Bench, job_id: str, site: str = "s1") -> str | None:
    with jobbench.site_context(site, bench.path):
        return jobbench.get_job_status(job_id)  # type: ignore[no-any-return]


def burst(bench: Bench) -> None:
    subprocess.run(
        [sys.executable, "-m", "jobbench", "--bench", str(bench.path), "worker", "--burst"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def csrf(client: TestClient, path: str = "/jobs") -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def post(client: TestClient, path: str, data: Any) -> Any:
    return client.post(path, data=data, follow_redirects=False)


def test_destructive_actions_ask_first_and_do_nothing_until_confirmed(
    client: TestClient, bench: Bench
) -> None:
    token = csrf(client)
    queued = enqueue(bench)
    for action, question in [("delete", "Delete job"), ("stop", "Stop job"),
                             ("cancel", "Cancel job")]:  # fmt: skip
        fields = {"site": "s1", "job_id": queued, "action": action, "csrf_token": token,
                  "next": "/jobs?status=queued"}  # fmt: skip
        asked = post(client, "/actions/job", fields)
        assert asked.status_code == 200 and question in asked.text, action
        assert status(bench, queued) == "queued", action  # nothing done yet
        form = re.search(r'<form method="post" action="/actions/job" class="confirm".*?</form>',
                         asked.text, re.S)  # fmt: skip
        assert form, asked.text
        hidden = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0)))
        assert hidden == {**fields, "confirmed": "1"}, action
        assert 'href="/jobs?status=queued"' in asked.text  # "No, go back" returns there
    elsewhere = {"site": "s1", "job_id": queued, "action": "delete", "csrf_token": token,
                 "next": "//evil.example/"}  # fmt: skip
    assert (
        'href="/" class="button" id="confirm-back"' in post(client, "/actions/job", elsewhere).text
    )
    purge = post(client, "/actions/purge-failed", {"csrf_token": token, "site": "s1"})
    assert purge.status_code == 200 and "Delete every failed job of site s1?" in purge.text
    done = post(client, "/actions/job", {"site": "s1", "job_id": queued, "action": "cancel",
                                         "csrf_token": token, "confirmed": "1"})  # fmt: skip
    assert done.status_code == 303 and status(bench, queued) == "canceled"
    retried = post(client, "/actions/job", {"site": "s1", "job_id": queued, "action": "retry",
                                            "csrf_token": token})  # fmt: skip
    assert retried.status_code == 303 and status(bench, queued) == "queued"  # no question
    unconfirmed = {"site": "s1", "job_id": queued, "action": "delete", "confirmed": "1"}
    assert post(client, "/actions/job", unconfirmed).status_code == 403  # still needs CSRF


def test_scheduled_jobs_show_their_run_time_and_run_now_or_cancel(
    client: TestClient, bench: Bench
) -> None:
    soon, other = later(bench, 3600), later(bench, 7200)
    page = client.get("/jobs?status=scheduled").text
    assert set(ROW.findall(page)) == {soon, other}
    row = page[page.index(f'<tr data-job="{soon}"') :].split("</tr>")[0]
    run_at = re.search(r'class="run-at"><time datetime="([^"]+)"[^>]*title="in (\d+) min"', row)
    assert run_at and int(run_at.group(2)) in (59, 60), row
    assert 'data-action="run-now"' in row and 'data-action="cancel"' in row
    token = csrf(client)
    ran = post(
        client,
        "/actions/job",
        {
            "site": "s1",
            "job_id": soon,
            "action": "run_now",
            "csrf_token": token,
            "next": "/jobs?status=scheduled",
        },
    )
    assert ran.status_code == 303 and status(bench, soon) == "queued"  # fmt: skip
    assert "queued to run now" in client.get("/jobs?status=scheduled").text
    post(client, "/actions/job", {"site": "s1", "job_id": other, "action": "cancel",
                                  "csrf_token": token, "confirmed": "1"})  # fmt: skip
    assert status(bench, other) == "canceled"
    detail = client.get(f"/job?site=s1&id={later(bench, 60)}").text
    assert 'id="run-at"' in detail and 'data-action="run-now"' in detail


def test_bulk_retry_and_delete(client: TestClient, bench: Bench) -> None:
    failed = [enqueue(bench, "s1", "json.loads", s="{bad") for _ in range(3)]
    elsewhere = enqueue(bench, "s2", "json.loads", s="[")
    burst(bench)
    token = csrf(client)
    picked = [f"s1::{failed[0]}", f"s1::{failed[1]}", f"s2::{elsewhere}"]
    ask = post(client, "/actions/bulk", {"action": "retry", "job": picked, "csrf_token": token})
    assert ask.status_code == 200 and "Retry 3 selected jobs?" in ask.text
    assert [status(bench, j) for j in failed] == ["failed"] * 3
    confirmed = {"action": "retry", "job": picked, "csrf_token": token, "confirmed": "1",
                 "next": "/jobs?status=failed"}  # fmt: skip
    done = post(client, "/actions/bulk", confirmed)
    assert done.status_code == 303 and done.headers["location"] == "/jobs?status=failed"
    assert "3 jobs queued again" in client.get("/jobs").text
    assert [status(bench, j) for j in failed] == ["queued", "queued", "failed"]
    assert status(bench, elsewhere, "s2") == "queued"
    delete = {**confirmed, "action": "delete", "job": [f"s1::{failed[0]}", "s1::gone"]}
    post(client, "/actions/bulk", delete)
    assert "1 job deleted, 1 no longer there" in client.get("/jobs").text
    assert status(bench, failed[0]) is None
    bad_site = {**confirmed, "job": ["nosuch::x"]}
    post(client, "/actions/bulk", bad_site)
    assert 'class="flash bad"' in client.get("/jobs").text


def test_retry_all_failed_jobs_of_a_filter(client: TestClient, bench: Bench) -> None:
    decode = [enqueue(bench, "s1", "json.loads", s="{bad") for _ in range(2)]
    typed = enqueue(bench, "s1", "json.loads", s=None)
    other_site = enqueue(bench, "s2", "json.loads", s="{bad")
    burst(bench)
    token = csrf(client)
    fields = {"site": "s1", "exc_type": "json.decoder.JSONDecodeError", "csrf_token": token}
    asked = post(client, "/actions/retry-failed", fields)
    assert asked.status_code == 200
    assert "Retry all 2 failed jobs of site s1, error json.decoder.JSONDecodeError?" in asked.text
    assert [status(bench, j) for j in decode] == ["failed", "failed"]
    done = post(client, "/actions/retry-failed", {**fields, "confirmed": "1"})
    assert done.status_code == 303 and "2 jobs queued again" in client.get("/").text
    assert [status(bench, j) for j in decode] == ["queued", "queued"]
    assert status(bench, typed) == "failed" and status(bench, other_site, "s2") == "failed"
    post(client, "/actions/retry-failed", {**fields, "confirmed": "1"})
    assert "No failed job matches" in client.get("/").text
    page = client.get("/jobs?status=failed").text
    assert 'action="/actions/retry-failed"' in page


def test_search_by_id_and_method_and_counts_on_the_tabs(client: TestClient, bench: Bench) -> None:
    a = enqueue(bench, "s1", "os.getcwd", job_id="invoice-42")
    b = enqueue(bench, "s2", "os.getpid")
    c = enqueue(bench, "s1", "json.dumps", obj=1)
    d = later(bench, 600)
    by_id = client.get("/jobs?q=invoice-42").text
    assert ROW.findall(by_id) == [a] and 'id="found-by-id"' in by_id
    assert ROW.findall(client.get("/jobs?q=getpid").text) == [b]  # part of a method's path
    assert set(ROW.findall(client.get("/jobs?q=OS.").text)) == {a, b, d}
    assert ROW.findall(client.get("/jobs?q=json&site=s1").text) == [c]
    assert ROW.findall(client.get("/jobs?q=nothing-like-it").text) == []
    tabs = client.get("/jobs").text
    counts = dict(re.findall(r'data-status="(\w+)">\w+ <span class="count">(\d+)</span>', tabs))
    assert counts["queued"] == "3" and counts["scheduled"] == "1" and counts["failed"] == "0"
    assert re.search(r'>all <span class="count">4</span>', tabs)


def test_failed_jobs_with_error_class_message_and_groups(client: TestClient, bench: Bench) -> None:
    decode = [enqueue(bench, "s1", "json.loads", s="{bad") for _ in range(3)]
    typed = enqueue(bench, "s1", "json.loads", s=None)
    burst(bench)
    page = client.get("/jobs?status=failed").text
    groups = re.search(r'<table id="error-groups">.*?</table>', page, re.S)
    assert groups, page
    rows = re.findall(r"<tr><td class=\"mono\"><a [^>]+>([\w.]+)</a></td>\s*"
                      r"<td class=\"message\">([^<]*)</td><td class=\"num\">(\d+)</td>",
                      groups.group(0))  # fmt: skip
    assert [(t, n) for t, _, n in rows] == [("json.decoder.JSONDecodeError", "3"),
                                            ("TypeError", "1")], rows  # fmt: skip
    assert "Expecting property name" in rows[0][1]
    row = page[page.index(f'<tr data-job="{typed}"') :].split("</tr>")[0]
    assert 'class="mono exc-type">TypeError<' in row and "not NoneType" in row
    only = client.get("/jobs?status=failed&exc_type=TypeError").text
    assert ROW.findall(only) == [typed]
    decoded = client.get("/jobs?status=failed&exc_type=json.decoder.JSONDecodeError").text
    assert set(ROW.findall(decoded)) == set(decode)


def test_overview_depth_latency_throughput_and_charts(client: TestClient, bench: Bench) -> None:
    for _ in range(4):
        enqueue(bench, "s1")
    enqueue(bench, "s1", "json.loads", s="{")
    burst(bench)  # 4 finished, 1 failed in this minute
    broker = get_broker(bench, bench.common_config())
    old = JobRecord(id=full_id("s1", "old"), site="s1", queue="long", method="os.getcwd",
                    payload=b"{}", enqueued_at=time.time() - 150)  # fmt: skip
    assert broker.enqueue(old)
    enqueue(bench, "s1", queue="long")
    page = client.get("/").text
    long_row = page[page.index('<tr data-queue="long">') :].split("</tr>")[0]
    assert '<td class="num depth">2</td>' in long_row
    latency = re.search(r'class="num latency">(\d+) min (\d+) s<', long_row)
    assert latency and latency.group(1) == "2" and 29 <= int(latency.group(2)) <= 40, long_row
    default_row = page[page.index('<tr data-queue="default">') :].split("</tr>")[0]
    assert '<td class="num throughput">0.8</td>' in default_row  # 4 in the last 5 minutes
    hour = page[page.index('id="chart-hour"') : page.index('id="chart-day"')]
    assert "Last hour: 4 finished, 1 failed" in hour
    assert ">jobs per minute</text>" in hour and ">time (" in hour  # labelled axes
    assert hour.count('class="finished"><title>') == 1  # one minute had outcomes
    day = page[page.index('id="chart-day"') :]
    assert "Last 24 hours: 4 finished, 1 failed" in day and ">jobs per hour</text>" in day
    assert 'id="scheduler-liveness"' in page and "no scheduler running" in page
    box = page[page.index('<table id="outbox">') :].split("</table>")[0]  # each site's outbox
    assert '<tr data-site="s1">' in box and '<tr data-site="s2">' in box


def test_one_timestamp_format_in_the_site_time_zone(client: TestClient, bench: Bench) -> None:
    config = bench.sites_path / "s1" / "site_config.json"
    text = config.read_text().rstrip().rstrip("}").rstrip()
    config.write_text(text + ', "time_zone": "Asia/Kolkata"}')
    job_id = enqueue(bench, "s1")
    page = client.get("/jobs").text
    assert "Times in Asia/Kolkata" in page
    stamp = re.search(r'<time datetime="([^"]+)" data-ts="([\d.]+)" title="([^"]+)">([^<]+)<', page)
    assert stamp, page
    assert stamp.group(1).endswith("+05:30") and stamp.group(3) == "just now"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stamp.group(4))
    assert stamp.group(1)[:19].replace("T", " ") == stamp.group(4)
    with jobbench.site_context("s1", bench.path) as local:
        doc = jobbench.new_doc("Scheduled Job Type", method="os.getcwd", frequency="Daily")
        doc.insert()
        local.db.commit()
        next_run = str(doc.next_execution)[:19]  # naive, in the site's zone
    scheduled = client.get("/scheduled").text
    assert next_run in scheduled  # shown as stored: the site's zone is the display zone
    detail = client.get(f"/job?site=s1&id={job_id}").text
    assert "+05:30" in detail and "UTC" not in detail.split("<footer")[0]


def test_job_page_shows_every_field_of_the_record(client: TestClient, bench: Bench) -> None:
    job_id = enqueue(bench, "s1", job_name="nightly import", event="imports", kwargs_note="x")
    broker = get_broker(bench, bench.common_config())
    record = broker.get(full_id("s1", job_id))
    assert record is not None
    page = client.get(f"/job?site=s1&id={job_id}").text
    shown = set(re.findall(r'<tr data-field="(\w+)">', page))
    expected = {
        f.name for f in dataclasses.fields(record)
        if getattr(record, f.name) not in (None, "", 0) and f.name not in
        ("payload", "result", "exc_info", "status", "progress", "stage")
    }  # fmt: skip
    assert shown == expected | {"attempts"}  # attempts is shown at 0 too; other zeros not
    assert {"event", "job_name", "signature", "enqueued_at", "timeout"} <= shown
    assert "kwargs_note" in page  # the arguments, decoded
    row = page[page.index('<tr data-field="enqueued_at">') :].split("</tr>")[0]
    assert "<time datetime=" in row


def test_error_pages_are_inside_the_layout(client: TestClient) -> None:
    html = {"accept": "text/html"}
    for path, code in [("/nowhere", 404), ("/job?site=s1&id=nope", 404), ("/jobs?page=x", 400)]:
        page = client.get(path, headers=html)
        assert page.status_code == code, path
        assert "<nav>" in page.text and 'id="error-detail"' in page.text and "<footer" in page.text


def test_deferred_jobs_show_what_they_wait_for_and_can_be_canceled(
    client: TestClient, bench: Bench
) -> None:
    from jobbench.jobs.record import encode_ids

    first = enqueue(bench, "s1")
    broker = get_broker(bench, bench.common_config())
    waiting = JobRecord(id=full_id("s1", "after-first"), site="s1", queue="default",
                        method="os.getcwd", payload=b"{}",
                        depends_on=encode_ids([full_id("s1", first)]))  # fmt: skip
    assert broker.enqueue(waiting)
    assert status(bench, "after-first") == "deferred"
    page = client.get("/jobs?status=deferred").text
    row = page[page.index('<tr data-job="after-first"') :].split("</tr>")[0]
    assert f'<td class="waits-for"><a href="/job?site=s1&amp;id={first}"' in row
    assert 'data-action="cancel"' in row
    assert (
        'id="waited-on-by"><a href="/job?site=s1&amp;id=after-first"'
        in client.get(f"/job?site=s1&id={first}").text
    )
    assert 'id="waits-for"' in client.get("/job?site=s1&id=after-first").text
    post(client, "/actions/job", {"site": "s1", "job_id": "after-first", "action": "cancel",
                                  "csrf_token": csrf(client), "confirmed": "1"})  # fmt: skip
    assert status(bench, "after-first") == "canceled"
