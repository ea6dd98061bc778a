"""Notes, ad-hoc tasks, drafts, assignment and the reach of a user's settings, through the JSON API."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.e2e.test_api_cases import deploy_acute, open_task, start_case


def _case_with_task(as_user):
    deploy_acute(as_user)
    case = start_case(as_user("carla"))
    return case, open_task(as_user("carla"), case["id"])


class TestNotesAndAdhocTasks:
    def test_a_note_is_added_and_listed_with_the_case(self, as_user):
        case, _ = _case_with_task(as_user)
        carla = as_user("carla")
        response = carla.post(f"/cases/{case['id']}/notes", json={"text": "Daughter is the contact."})
        assert response.status_code == 201 and response.json["author"] == "carla"
        detail = carla.get(f"/cases/{case['id']}").json
        assert [n["text"] for n in detail["notes"]] == ["Daughter is the contact."]
        assert "note_added" in [e["kind"] for e in detail["events"]]

    def test_a_blank_note_is_refused_naming_the_field(self, as_user):
        case, _ = _case_with_task(as_user)
        response = as_user("carla").post(f"/cases/{case['id']}/notes", json={"text": ""})
        assert response.status_code == 400 and "text" in response.json["error"]["field_errors"]

    def test_an_adhoc_task_for_a_role_reaches_its_queue_and_completes_with_an_outcome(self, as_user):
        case, _ = _case_with_task(as_user)
        carla, cole = as_user("carla"), as_user("cole")
        due = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
        response = carla.post(f"/cases/{case['id']}/tasks", json={
            "title": "Call the family", "candidate_role": "case_manager", "due_at": due, "note": "After 4 pm."})
        assert response.status_code == 201, response.json
        task = response.json
        assert task["adhoc"] and task["status"] == "open" and task["instructions"] == "After 4 pm."
        queue = cole.get("/tasks?queue=true").json["items"]
        assert task["id"] in [t["id"] for t in queue]
        refused = cole.post(f"/tasks/{task['id']}/complete", json={"data": {}})
        assert refused.status_code == 400 and "outcome" in refused.json["error"]["field_errors"]
        done = cole.post(f"/tasks/{task['id']}/complete", json={"data": {"outcome": "Spoke to the daughter."}})
        assert done.status_code == 200 and done.json["status"] == "completed"

    def test_an_adhoc_task_for_nobody_or_in_the_past_is_refused(self, as_user):
        case, _ = _case_with_task(as_user)
        carla = as_user("carla")
        neither = carla.post(f"/cases/{case['id']}/tasks", json={"title": "Call"})
        assert neither.status_code == 400 and "assignee" in neither.json["error"]["field_errors"]
        past = carla.post(f"/cases/{case['id']}/tasks", json={
            "title": "Call", "assignee": "carla", "due_at": "2020-01-01T10:00:00+00:00"})
        assert past.status_code == 400 and "due_at" in past.json["error"]["field_errors"]
        assert [t["adhoc"] for t in carla.get(f"/cases/{case['id']}").json["open_tasks"]] == [False]


class TestDraftsAndAssignment:
    def test_a_draft_is_kept_unvalidated_and_claims_the_task(self, as_user):
        _, task = _case_with_task(as_user)
        carla = as_user("carla")
        saved = carla.put(f"/tasks/{task['id']}/draft", json={"data": {"expected_midnights": "2a"}})
        assert saved.status_code == 200 and saved.json["assignee"] == "carla"
        detail = carla.get(f"/tasks/{task['id']}").json
        assert detail["draft"] == {"expected_midnights": "2a"} and detail["draft_saved_by"] == "carla"

    def test_a_supervisor_assigns_to_someone_with_the_role_and_nobody_else_can(self, as_user):
        _, task = _case_with_task(as_user)
        assert as_user("carla").post(f"/tasks/{task['id']}/assign", json={"assignee": "cole"}).status_code == 403
        wrong = as_user("sue").post(f"/tasks/{task['id']}/assign", json={"assignee": "pat"})
        assert wrong.status_code == 400 and "case_manager" in wrong.json["error"]["message"]
        assigned = as_user("sue").post(f"/tasks/{task['id']}/assign", json={"assignee": "cole"})
        assert assigned.status_code == 200 and assigned.json["assignee"] == "cole"


class TestSettings:
    def test_a_user_sees_no_case_or_task_outside_their_settings(self, as_user):
        case, task = _case_with_task(as_user)
        wendy = as_user("wendy")  # a workers' comp supervisor; the case is acute hospital
        assert wendy.get(f"/cases/{case['id']}").status_code == 404
        assert wendy.get(f"/tasks/{task['id']}").status_code == 404
        assert wendy.post(f"/tasks/{task['id']}/claim").status_code == 404
        assert wendy.post(f"/cases/{case['id']}/notes", json={"text": "x"}).status_code == 404
        assert wendy.get("/cases").json["items"] == []
        assert wendy.get("/tasks").json["total"] == 0

    def test_a_user_without_a_tasks_role_cannot_read_it(self, as_user):
        _, task = _case_with_task(as_user)
        assert as_user("pat").get(f"/tasks/{task['id']}").status_code == 403
        assert task["id"] not in [t["id"] for t in as_user("pat").get("/tasks").json["items"]]
