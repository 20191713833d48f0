"""Record mutations over HTTP with the demo clients' real tokens; nothing here writes."""

from __future__ import annotations

import asyncpg

from tests.support.http import Api

LOOKUP = '{ msme(nib: "9990000000001") { id version name } }'
UPDATE = """
mutation($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { id version }
}
"""


def test_writes_outside_the_jurisdiction_or_without_the_scope_are_refused(api: Api) -> None:
    record = api.graphql(LOOKUP, "demo-province-62")["data"]["msme"]
    variables = {"id": record["id"], "version": record["version"], "changes": {"name": "Diambil"}}

    kalbar = api.graphql(UPDATE, "demo-province-61", variables)
    assert kalbar["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    ministry = api.graphql(UPDATE, "demo-ministry", variables)
    assert ministry["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "requiredScopes": ["records:write"],
    }
    jamkrida = api.graphql(UPDATE, "demo-jamkrida-62", variables)
    assert jamkrida["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert api.graphql(LOOKUP, "demo-province-62")["data"]["msme"] == record


def test_bad_input_names_the_field_and_carries_no_stack_trace(api: Api) -> None:
    record = api.graphql(LOOKUP, "demo-province-62")["data"]["msme"]
    variables = {"id": record["id"], "version": record["version"], "changes": {"kbliCode": "4"}}
    answer = api.graphql(UPDATE, "demo-province-62", variables)
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "changes.kbliCode"
    assert "Traceback" not in str(answer)
    assert "File " not in str(answer)
    assert answer["data"] == {"updateMsme": None}
    assert api.graphql(LOOKUP, "demo-province-62")["data"]["msme"] == record


ENROL = """
mutation($input: ParticipationInput!) { addParticipation(input: $input) { id programme { id } } }
"""
KALTENG_PARTICIPANTS = '{ programme(id: "PR-JAMKRIDA-62") { participants { msme { nib } } } }'


def test_a_province_cannot_enrol_its_businesses_in_another_provinces_programme(
    api: Api,
) -> None:
    """Kalbar's business in Kalteng's guarantee programme: Kalteng, whose programme it is, could
    neither see nor remove the participation, so it is refused on the programme."""
    kalbar_msme = api.graphql('{ msme(nib: "9990000000003") { id } }', "demo-province-61")
    given = {
        "programmeId": "PR-JAMKRIDA-62",
        "msmeId": kalbar_msme["data"]["msme"]["id"],
        "role": "recipient",
        "status": "COMPLETED",
        "detail": "x",
    }
    before = api.graphql(KALTENG_PARTICIPANTS, "demo-province-62")
    answer = api.graphql(ENROL, "demo-province-61", {"input": given})
    assert answer["data"] == {"addParticipation": None}
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input.programmeId"}
    assert error["message"].startswith("input.programmeId: PR-JAMKRIDA-62 is a programme of")
    assert api.graphql(KALTENG_PARTICIPANTS, "demo-province-62") == before


async def test_a_write_meeting_an_import_in_progress_is_503_with_retry_after(
    api: Api, demo_url: str
) -> None:
    """While an import holds the register (its lock, held here as the import holds it, in a
    transaction), a write is answered as an outage is: 503 and Retry-After, no data, no change;
    not a 500 once the statement timeout has run out."""
    record = api.graphql(LOOKUP, "demo-province-62")["data"]["msme"]
    variables = {"id": record["id"], "version": record["version"], "changes": {"name": "Antre"}}
    importing = await asyncpg.connect(demo_url)
    try:
        async with importing.transaction():
            await importing.execute("SELECT pg_advisory_xact_lock(hashtext('sinergi.import'))")
            response = api.post(
                {"query": UPDATE, "variables": variables}, api.token("demo-province-62")
            )
    finally:
        await importing.close()
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    answer = response.json()
    assert "data" not in answer
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert api.graphql(LOOKUP, "demo-province-62")["data"]["msme"] == record
