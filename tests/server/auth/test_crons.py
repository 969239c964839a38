"""Crons under auth: a cron keeps its creator, its runs run as that user, and another user
neither finds, changes, deletes it nor schedules runs on the creator's thread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import RunningServer, until
from tests.server.auth.conftest import as_user


async def test_a_cron_runs_as_its_creator_and_is_hidden_from_others(
    auth_server: RunningServer,
) -> None:
    async with as_user(auth_server, "a") as alice, as_user(auth_server, "b") as bob:
        thread_id = (await alice.post("/threads", json={})).json()["thread_id"]
        second = (datetime.now(UTC) + timedelta(seconds=2)).second
        created = await alice.post(
            f"/threads/{thread_id}/runs/crons",
            json={
                "assistant_id": "whoami",
                "schedule": f"* * * * * {second}",
                "input": {"notes": ["tick"]},
                # A client cannot choose who the cron runs as.
                "config": {"configurable": {"langgraph_auth_user_id": "mallory"}},
            },
        )
        assert created.status_code == 200, created.text
        cron = created.json()
        assert cron["user_id"] == "alice" and cron["metadata"]["owner"] == "alice"

        async def ran() -> object:
            runs = (await alice.get(f"/threads/{thread_id}/runs")).json()
            return runs if runs and runs[0]["status"] == "success" else None

        await until(ran, within=8)
        values = (await alice.get(f"/threads/{thread_id}/state")).json()["values"]
        assert values["user_id"] == "alice" and values["user_identity"] == "alice"

        cron_url = f"/runs/crons/{cron['cron_id']}"
        assert (await bob.post("/runs/crons/search", json={})).json() == []
        assert (await bob.post("/runs/crons/count", json={})).json() == 0
        assert [c["cron_id"] for c in (await alice.post("/runs/crons/search", json={})).json()] == [
            cron["cron_id"]
        ]
        for response in (
            await bob.patch(cron_url, json={"enabled": False}),
            await bob.delete(cron_url),
            await bob.post(
                f"/threads/{thread_id}/runs/crons",
                json={"assistant_id": "whoami", "schedule": "* * * * *"},
            ),
        ):
            assert response.status_code == 404, response.text
        updated = await alice.patch(
            cron_url, json={"config": {"configurable": {"langgraph_auth_user_id": "mallory"}}}
        )
        configurable = updated.json()["payload"]["config"]["configurable"]
        assert configurable["langgraph_auth_user_id"] == "alice"
        assert (await alice.delete(cron_url)).status_code == 204
