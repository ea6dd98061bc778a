"""A case worked task by task through the JSON API, on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta

from tests.e2e.conftest import REPO, diagram_files, make_app

# The API mechanics are tested on a small, stable review diagram; the shipped diagrams have process tests.
ACUTE = REPO / "tests" / "data" / "diagrams" / "utilization_review"
ADMISSION_NOT_MET = {"status_recommendation": "observation", "criteria_met": False, "expected_midnights": 1}


def deploy_acute(as_user):
    response = as_user("dana").post("/process-versions", json={"name": "acute_hospital", "files": diagram_files(ACUTE)})
    assert response.status_code == 201, response.json
    return response.json["items"]


def start_case(api, **fields):
    body = {"process_id": "acute_utilization_review", "subject_name": "Maria Gonzalez", "subject_ref": "MRN-1"}
    body.update(fields)
    response = api.post("/cases", json=body)
    assert response.status_code == 201, response.json
    return response.json


def open_task(api, case_id):
    [task] = api.get(f"/cases/{case_id}").json["open_tasks"]
    return task


class TestDeploying:
    def test_the_deployment_note_is_kept_with_the_version_and_listed(self, as_user):
        files = diagram_files(ACUTE)
        body = {"name": "acute_hospital", "files": files, "note": "Admission review due in 24 h (payer contract 2027)"}
        response = as_user("dana").post("/process-versions", json=body)
        assert response.status_code == 201, response.json
        [version] = response.json["items"]
        assert version["note"] == body["note"]
        [listed] = as_user("carla").get("/process-versions").json["items"]
        assert (listed["id"], listed["note"]) == (version["id"], body["note"])

    def test_a_multipart_upload_keeps_its_note_too(self, as_user):
        from io import BytesIO
        uploads = [(BytesIO(text.encode()), path) for path, text in diagram_files(ACUTE).items()]
        response = as_user("dana").post("/process-versions", data={"name": "acute_hospital", "note": "From Camunda Modeler",
                                                                   "file": uploads}, content_type="multipart/form-data")
        assert response.status_code == 201, response.json
        assert response.json["items"][0]["note"] == "From Camunda Modeler"

    def test_a_designer_deploys_a_diagram_set_as_version_one_and_again_unchanged(self, as_user):
        [version] = deploy_acute(as_user)
        assert (version["process_id"], version["version"], version["setting"]) == ("acute_utilization_review", 1, "acute_hospital")
        assert "forms/admission_review.schema.json" in version["files"]
        [again] = deploy_acute(as_user)
        assert again["id"] == version["id"], "unchanged files keep their version"
        listed = as_user("carla").get("/process-versions").json["items"]
        assert [v["version"] for v in listed] == [1]

    def test_a_set_that_calls_common_processes_deploys_with_them_from_the_servers_library(self, as_user):
        shipped = REPO / "bpmn" / "acute_hospital"
        response = as_user("dana").post("/process-versions", json={"name": "acute_hospital", "files": diagram_files(shipped)})
        assert response.status_code == 201, response.json
        [version] = response.json["items"]
        assert version["process_id"] == "acute_stay"
        assert {"common/payer_authorization.bpmn", "common/post_acute_referral.bpmn"} <= set(version["files"])

    def test_only_designers_deploy(self, as_user):
        response = as_user("carla").post("/process-versions", json={"name": "acute_hospital", "files": diagram_files(ACUTE)})
        assert response.status_code == 403
        assert "designers" in response.json["error"]["message"]


class TestWorkingACase:
    def test_start_list_claim_complete_walks_the_case_to_its_next_lane(self, as_user):
        deploy_acute(as_user)
        carla, pat = as_user("carla"), as_user("pat")
        case = start_case(carla)
        assert case["status"] == "active" and case["setting"] == "acute_hospital"

        queue = carla.get("/tasks", query_string={"queue": "true"}).json
        assert queue["total"] == 1
        task = queue["items"][0]
        assert (task["element_id"], task["candidate_role"], task["status"]) == ("admission_review", "case_manager", "open")
        opened = datetime.fromisoformat(case["opened_at"])
        assert datetime.fromisoformat(task["due_at"]) == opened + timedelta(hours=24)
        assert datetime.fromisoformat(task["at_risk_at"]) == opened + timedelta(hours=24) * 0.8

        detail = carla.get(f"/tasks/{task['id']}").json
        assert detail["form_schema"]["title"] == "Admission status review"
        assert detail["ui_schema"]["review_notes"]["ui:widget"] == "textarea"

        claimed = carla.post(f"/tasks/{task['id']}/claim").json
        assert claimed["assignee"] == "carla" and claimed["status"] == "claimed"
        assert carla.get("/tasks", query_string={"mine": "true"}).json["total"] == 1

        done = carla.post(f"/tasks/{task['id']}/complete", json={"data": ADMISSION_NOT_MET})
        assert done.status_code == 200 and done.json["status"] == "completed"

        assert carla.get("/tasks", query_string={"queue": "true"}).json["total"] == 0
        advisor_task = pat.get("/tasks", query_string={"queue": "true"}).json["items"][0]
        assert advisor_task["element_id"] == "physician_advisor_review"
        assert pat.post(f"/tasks/{advisor_task['id']}/complete", json={
            "data": {"advisor_decision": "keep_status", "advisor_rationale": "Meets two-midnight expectation."},
        }).status_code == 200

        final = carla.get(f"/cases/{case['id']}").json
        assert final["open_tasks"] == []
        [timer] = final["timers"]
        assert timer["element_id"] == "wait_for_review_date"
        assert final["data"]["advisor_decision"] == "keep_status"

    def test_every_action_appends_its_event_with_actor_and_time(self, as_user):
        deploy_acute(as_user)
        carla = as_user("carla")
        case = start_case(carla)
        task = open_task(carla, case["id"])
        carla.post(f"/tasks/{task['id']}/claim")
        carla.post(f"/tasks/{task['id']}/unclaim")
        carla.post(f"/tasks/{task['id']}/complete", json={"data": ADMISSION_NOT_MET})
        events = carla.get(f"/cases/{case['id']}").json["events"]
        kinds = [(e["kind"], e["actor"]) for e in events]
        assert kinds == [
            ("case_opened", "carla"),
            ("task_created", "carla"),
            ("task_claimed", "carla"),
            ("task_unclaimed", "carla"),
            ("task_completed", "carla"),
            ("task_created", "carla"),
        ]
        assert events[4]["payload"]["data"] == ADMISSION_NOT_MET
        assert all(e["at"] for e in events)
        assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    def test_someone_elses_claimed_task_cannot_be_claimed_or_completed(self, as_user):
        deploy_acute(as_user)
        carla, cole = as_user("carla"), as_user("cole")
        task = open_task(carla, start_case(carla)["id"])
        wrong_role = as_user("pat").post(f"/tasks/{task['id']}/claim")
        assert wrong_role.status_code == 403 and "case_manager role" in wrong_role.json["error"]["message"]
        carla.post(f"/tasks/{task['id']}/claim")
        assert cole.post(f"/tasks/{task['id']}/claim").status_code == 409
        refused = cole.post(f"/tasks/{task['id']}/complete", json={"data": ADMISSION_NOT_MET})
        assert refused.status_code == 409 and "claimed by carla" in refused.json["error"]["message"]


class TestConcurrentCompletion:
    def test_two_clients_completing_the_same_task_exactly_one_succeeds(self, as_user):
        deploy_acute(as_user)
        carla = as_user("carla")
        case = start_case(carla)
        task = open_task(carla, case["id"])
        clients = [as_user("carla"), as_user("sue")]
        barrier = threading.Barrier(len(clients))
        results = []

        def complete(api, criteria_met):
            barrier.wait()
            data = dict(ADMISSION_NOT_MET, criteria_met=criteria_met)
            results.append(api.post(f"/tasks/{task['id']}/complete", json={"data": data}))

        threads = [threading.Thread(target=complete, args=(api, i == 0)) for i, api in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 409], [r.json for r in results]
        loser = next(r for r in results if r.status_code == 409)
        assert "already completed" in loser.json["error"]["message"] or "changed by someone else" in loser.json["error"]["message"]

        detail = carla.get(f"/cases/{case['id']}").json
        completions = [e for e in detail["events"] if e["kind"] == "task_completed"]
        assert len(completions) == 1
        winner_met = completions[0]["payload"]["data"]["criteria_met"]
        assert detail["data"]["criteria_met"] == winner_met
        expected_next = [] if winner_met else ["physician_advisor_review"]
        assert [t["element_id"] for t in detail["open_tasks"]] == expected_next


class TestRestart:
    def test_a_case_survives_a_restart_midway_and_continues(self, as_user, database_url, tmp_path):
        deploy_acute(as_user)
        carla = as_user("carla")
        case = start_case(carla)
        task = open_task(carla, case["id"])
        assert carla.post(f"/tasks/{task['id']}/complete", json={"data": ADMISSION_NOT_MET}).status_code == 200

        restarted = make_app(database_url, tmp_path)
        pat = type(carla)(restarted.test_client(), as_user("pat").headers["Authorization"].split()[1])
        detail = pat.get(f"/cases/{case['id']}").json
        assert [t["element_id"] for t in detail["open_tasks"]] == ["physician_advisor_review"]
        advisor_task = detail["open_tasks"][0]
        response = pat.post(f"/tasks/{advisor_task['id']}/complete", json={
            "data": {"advisor_decision": "query_attending", "advisor_rationale": "Unclear expectation."},
        })
        assert response.status_code == 200
        after = pat.get(f"/cases/{case['id']}").json
        assert after["data"]["criteria_met"] is False and after["data"]["advisor_decision"] == "query_attending"
        assert after["version"] == detail["version"] + 1
