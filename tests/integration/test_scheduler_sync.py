"""``migrate`` syncs apps' ``scheduler_events`` into Scheduled Job Types (SPEC section 5, "Events
from hooks"): every hook key, in-place updates, deletions, warnings, idempotence."""

from __future__ import annotations

from typing import Any

import jobbench
from jobbench.scheduler.cron import next_execution

from .scheduler_helpers import JOB_TYPE, LOG, ZONE, Sched, sched_sqlite_fixture  # noqa: F401

F = "sapp.hookfuncs."

ALL_EVENTS: dict[str, Any] = {
    "all": [F + "every"],
    "hourly": [F + "hourly_job"],
    "daily": [F + "daily_job", F + "other_job"],
    "weekly": [F + "weekly_job"],
    "monthly": [F + "monthly_job"],
    "yearly": [F + "yearly_job"],
    "annual": [F + "annual_job"],
    "hourly_long": [F + "hourly_long_job"],
    "daily_long": [F + "daily_long_job"],
    "weekly_long": [F + "weekly_long_job"],
    "monthly_long": [F + "monthly_long_job"],
    "hourly_maintenance": [F + "hourly_maintenance_job"],
    "daily_maintenance": [F + "daily_maintenance_job"],
    "cron": {"0/15 * * * *": [F + "cron_job"]},
    "cron_long": {"0 3 * * *": [F + "cron_long_job"]},
}

# method -> (frequency, cron_format, stored queue, queue the run goes to, create_log)
EXPECTED = {
    "every": ("All", None, None, "default", False),
    "hourly_job": ("Hourly", None, None, "default", True),
    "daily_job": ("Daily", None, None, "default", True),
    "other_job": ("Daily", None, None, "default", True),
    "weekly_job": ("Weekly", None, None, "default", True),
    "monthly_job": ("Monthly", None, None, "default", True),
    "yearly_job": ("Yearly", None, None, "default", True),
    "annual_job": ("Annual", None, None, "default", True),
    "hourly_long_job": ("Hourly Long", None, None, "long", True),
    "daily_long_job": ("Daily Long", None, None, "long", True),
    "weekly_long_job": ("Weekly Long", None, None, "long", True),
    "monthly_long_job": ("Monthly Long", None, None, "long", True),
    "hourly_maintenance_job": ("Hourly Maintenance", None, None, "long", True),
    "daily_maintenance_job": ("Daily Maintenance", None, None, "long", True),
    "cron_job": ("Cron", "0/15 * * * *", None, "default", False),
    "cron_long_job": ("Cron", "0 3 * * *", "long", "long", False),
}


def _by_method(sched: Sched) -> dict[str, dict[str, Any]]:
    rows = sched.job_types()
    by_method = {r["method"].removeprefix(F): r for r in rows}
    assert len(by_method) == len(rows), f"two job types share a method: {rows}"
    return by_method


def _target_queues(sched: Sched) -> dict[str, str]:
    with sched.ctx():
        return {
            row.method.removeprefix(F): jobbench.get_doc(JOB_TYPE, row.name).target_queue
            for row in jobbench.get_all(JOB_TYPE, fields=["name", "method"])
        }


def _add_log(sched: Sched, job_type: str) -> str:
    with sched.ctx():
        log = jobbench.new_doc(LOG, scheduled_job_type=job_type, status="Complete")
        log.insert()
        jobbench.db.commit()
        return str(log.name)


def _new_event_job_type(sched: Sched, cron: str = "0/5 * * * *") -> tuple[str, str]:
    with sched.ctx():
        event = jobbench.new_doc("Scheduler Event")
        event.scheduled_against = "Process Payment Reconciliation"
        event.save()
        job = jobbench.new_doc(JOB_TYPE)
        job.frequency = "Cron"
        job.scheduler_event = event.name
        job.cron_format = cron
        job.save()
        jobbench.db.commit()
        return str(event.name), str(job.name)


def test_every_hook_key_becomes_a_job_type_with_its_frequency_cron_and_queue(
    sched_sqlite: Sched,
) -> None:
    sched = sched_sqlite
    sched.write_hooks(ALL_EVENTS)

    report = sched.migrate()

    assert report.warnings == []
    rows = _by_method(sched)
    assert sorted(report.inserted) == sorted(r["name"] for r in rows.values())
    got = {
        m: (r["frequency"], r["cron_format"], r["queue"], r["create_log"]) for m, r in rows.items()
    }
    assert got == {m: (e[0], e[1], e[2], e[4]) for m, e in EXPECTED.items()}
    assert _target_queues(sched) == {m: e[3] for m, e in EXPECTED.items()}
    for method, row in rows.items():
        assert row["next_execution"] is not None, method
        assert row["last_execution"] is None and not row["stopped"], method


def test_rerunning_migrate_changes_nothing(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    sched.write_hooks(ALL_EVENTS)
    sched.migrate()
    before = sched.job_types()

    again = sched.migrate()
    third = sched.migrate()

    for report in (again, third):
        assert (report.inserted, report.updated, report.deleted, report.warnings) == (
            [],
            [],
            [],
            [],
        )
    assert sched.job_types() == before


def test_a_changed_frequency_or_cron_updates_the_same_document(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    sched.write_hooks(ALL_EVENTS)
    sched.migrate()
    old = _by_method(sched)
    daily, cron = old["daily_job"]["name"], old["cron_job"]["name"]
    sched.set_job_type(daily, stopped=1)
    daily_log, cron_log = _add_log(sched, daily), _add_log(sched, cron)

    changed = dict(ALL_EVENTS)
    changed["daily"] = [F + "other_job"]
    changed["weekly"] = [F + "weekly_job", F + "daily_job"]
    changed["cron"] = {"0/20 * * * *": [F + "cron_job"]}
    sched.write_hooks(changed)
    report = sched.migrate()

    assert sorted(report.updated) == sorted([daily, cron])
    assert (report.inserted, report.deleted, report.warnings) == ([], [], [])
    new = _by_method(sched)
    assert new["daily_job"]["name"] == daily
    assert new["daily_job"]["frequency"] == "Weekly"
    assert new["daily_job"]["stopped"], "the stopped flag was lost"
    assert new["daily_job"]["creation"] == old["daily_job"]["creation"]
    assert new["cron_job"]["name"] == cron
    assert new["cron_job"]["cron_format"] == "0/20 * * * *"
    assert new["cron_job"]["next_execution"] == next_execution(
        "Cron", "0/20 * * * *", old["cron_job"]["creation"], ZONE
    )
    assert new["daily_job"]["next_execution"] == next_execution(
        "Weekly", None, old["daily_job"]["creation"], ZONE
    )
    assert {log["name"] for log in sched.logs(daily)} == {daily_log}
    assert {log["name"] for log in sched.logs(cron)} == {cron_log}
    unchanged = {m for m in EXPECTED if m not in ("daily_job", "cron_job")}
    for method in unchanged:
        assert new[method] == old[method], method


def test_moving_a_cron_between_cron_and_cron_long_changes_its_queue(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    sched.write_hooks({"cron": {"0 3 * * *": [F + "cron_job"]}})
    sched.migrate()
    (name,) = [r["name"] for r in sched.job_types()]

    sched.write_hooks({"cron_long": {"0 3 * * *": [F + "cron_job"]}})
    report = sched.migrate()

    assert report.updated == [name]
    assert _target_queues(sched) == {"cron_job": "long"}
    assert [r["name"] for r in sched.job_types()] == [name]


def test_gone_from_hooks_is_deleted_unless_linked_to_a_scheduler_event(
    sched_sqlite: Sched,
) -> None:
    sched = sched_sqlite
    sched.write_hooks(ALL_EVENTS)
    sched.migrate()
    gone = _by_method(sched)["other_job"]["name"]
    event, runtime = _new_event_job_type(sched)

    fewer = dict(ALL_EVENTS)
    fewer["daily"] = [F + "daily_job"]
    sched.write_hooks(fewer)
    report = sched.migrate()

    assert report.deleted == [gone]
    names = {r["name"] for r in sched.job_types()}
    assert gone not in names
    assert runtime in names, "a job type of a Scheduler Event must survive migrate"
    assert sched.job_type(runtime)["scheduler_event"] == event

    sched.write_hooks(None)  # an app with no scheduler_events at all
    report = sched.migrate()
    assert [r["name"] for r in sched.job_types()] == [runtime]
    assert len(report.deleted) == len(EXPECTED) - 1


def test_a_method_that_does_not_resolve_is_a_warning_naming_app_and_path(
    sched_sqlite: Sched,
) -> None:
    sched = sched_sqlite
    sched.write_hooks(
        {
            "hourly": [F + "hourly_job", F + "no_such_function"],
            "daily": ["sapp.no_such_module.task"],
            "cron": {"0 2 * * *": ["nowhere_at_all.cleanup"]},
        }
    )

    report = sched.migrate()

    assert len(report.warnings) == 3, report.warnings
    for path, warning in zip(
        (F + "no_such_function", "sapp.no_such_module.task", "nowhere_at_all.cleanup"),
        report.warnings,
        strict=True,
    ):
        assert warning.startswith("sapp:"), warning
        assert path in warning, warning
    assert [r["method"] for r in sched.job_types()] == [F + "hourly_job"]


def test_an_unknown_hook_key_is_a_warning_and_schedules_nothing(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    sched.write_hooks({"every_minute": [F + "every"], "daily": [F + "daily_job"]})

    report = sched.migrate()

    assert len(report.warnings) == 1, report.warnings
    assert report.warnings[0].startswith("sapp:")
    assert "'every_minute'" in report.warnings[0]
    assert [r["method"] for r in sched.job_types()] == [F + "daily_job"]


def test_an_invalid_cron_in_hooks_is_a_warning_naming_it(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    sched.write_hooks(
        {
            "cron": {"61 * * * *": [F + "cron_job"], "0 1 * * *": [F + "other_job"]},
            "cron_long": {"every day": [F + "cron_long_job"]},
        }
    )

    report = sched.migrate()

    assert len(report.warnings) == 2, report.warnings
    assert any("'61 * * * *'" in w and "sapp:" in w for w in report.warnings)
    assert any("'every day'" in w and "sapp:" in w for w in report.warnings)
    assert [(r["method"], r["cron_format"]) for r in sched.job_types()] == [
        (F + "other_job", "0 1 * * *")
    ]


def test_migrate_from_the_cli_reports_added_job_types_and_warnings(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    sched.write_hooks({"hourly": [F + "hourly_job", F + "missing"]})

    done = sched.cli("migrate")

    assert done.returncode == 0, done.stderr
    assert "added scheduled job type hookfuncs.hourly_job" in done.stdout
    assert f"Warning: sapp: scheduler_events['hourly']: '{F}missing'" in done.stderr
    assert [r["method"] for r in sched.job_types()] == [F + "hourly_job"]


def test_a_padded_cron_is_stored_stripped_and_causes_no_update_on_migrate(
    sched_sqlite: Sched,
) -> None:
    sched = sched_sqlite
    sched.write_hooks({"cron": {"  0/15   *  * * *  ": [F + "cron_job"]}})
    first = sched.migrate()
    assert len(first.inserted) == 1 and not first.warnings
    (row,) = sched.job_types()
    assert row["cron_format"] == "0/15 * * * *"
    again = sched.migrate()
    assert (again.inserted, again.updated, again.deleted) == ([], [], [])


def test_cron_aliases_are_accepted_and_stored_as_written(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    aliases = ["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"]
    funcs = ["every", "hourly_job", "daily_job", "weekly_job", "monthly_job", "yearly_job"]
    funcs.append("annual_job")
    sched.write_hooks({"cron": {a: [F + f] for a, f in zip(aliases, funcs, strict=True)}})
    report = sched.migrate()
    assert not report.warnings and len(report.inserted) == len(aliases)
    by_method = _by_method(sched)
    expected_next = {  # the alias's expansion decides the next run
        "@hourly": ("Hourly", None),
        "@daily": ("Daily", None),
        "@midnight": ("Daily", None),
        "@weekly": ("Weekly", None),
        "@monthly": ("Monthly", None),
        "@yearly": ("Yearly", None),
        "@annually": ("Yearly", None),
    }
    for alias, func in zip(aliases, funcs, strict=True):
        row = by_method[func]
        assert (row["frequency"], row["cron_format"]) == ("Cron", alias)
        frequency, cron = expected_next[alias]
        assert row["next_execution"] == next_execution(frequency, cron, row["creation"], ZONE)


def test_a_method_under_two_keys_gets_one_job_type_of_the_later_key_and_a_warning(
    sched_sqlite: Sched,
) -> None:
    sched = sched_sqlite
    sched.write_hooks({"daily": [F + "other_job"], "hourly_long": [F + "other_job"]})
    report = sched.migrate()
    (row,) = sched.job_types()
    assert (row["method"], row["frequency"]) == (F + "other_job", "Hourly Long")
    (warning,) = report.warnings
    assert "scheduler_events['daily']" in warning and "scheduler_events['hourly_long']" in warning
    assert F + "other_job" in warning
    again = sched.migrate()  # stable: no flip-flop between the two keys
    assert (again.inserted, again.updated, again.deleted) == ([], [], [])
    (row,) = sched.job_types()
    assert row["frequency"] == "Hourly Long"


def test_trigger_scheduler_event_runs_the_maintenance_job_types(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    sched.write_hooks(
        {
            "hourly_maintenance": [F + "hourly_maintenance_job"],
            "daily_maintenance": [F + "daily_maintenance_job"],
            "hourly": [F + "hourly_job"],
        }
    )
    sched.migrate()
    done = sched.cli("trigger-scheduler-event", "hourly_maintenance")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith("Ran ") and "hourly_maintenance_job" in line
    logged = {lg["scheduled_job_type"] for lg in sched.logs() if lg["status"] == "Complete"}
    names = {r["method"].removeprefix(F): r["name"] for r in sched.job_types()}
    assert logged == {names["hourly_maintenance_job"]}
