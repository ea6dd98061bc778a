"""The script sandbox: what diagram scripts may do, what they may not, and how long they may run."""
from __future__ import annotations

import os
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from workflows import scripting
from workflows.clock import running_at
from workflows.errors import ScriptRejected
from workflows.scripting import RestrictedEnvironment, check_script, make_script_engine

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
CONFORMANCE = "/work/shared/conformance/spiffworkflow/spiff"
LEFTOVER_NAMES = {"__builtins__", *scripting.HELPERS, *scripting.SAFE_BUILTINS} | {
    name for name in vars(scripting) if name.startswith("_") and name.endswith("_")
}


@pytest.fixture
def env() -> RestrictedEnvironment:
    return RestrictedEnvironment()


def run(env: RestrictedEnvironment, script: str, data: dict | None = None, at: datetime = NOW) -> dict:
    data = {} if data is None else data
    with running_at(at):
        env.execute(script, data)
    return data


class TestScriptsWorkOnTaskData:
    def test_assignments_reach_task_data_and_helpers_do_not(self, env):
        data = run(env, "los = 3\nnote = 'stable'\nwhen = now()")
        assert data == {"los": 3, "note": "stable", "when": NOW}

    def test_functions_lambdas_and_builtins_are_removed_after_the_script(self, env):
        data = run(env, "def double(n):\n    return n * 2\nhalf = lambda n: n / 2\nresult = double(half(8))")
        assert data == {"result": 8.0}
        assert not LEFTOVER_NAMES & set(data)

    def test_dicts_and_lists_in_task_data_can_be_changed_in_place(self, env):
        data = run(env, "patient['ward'] = 'B'\npatient['visits'] += 1\nreviews.append(2)\nreviews[0:1] = [0]",
                   {"patient": {"visits": 1}, "reviews": [1]})
        assert data == {"patient": {"visits": 2, "ward": "B"}, "reviews": [0, 2]}

    def test_everyday_python_constructs_work(self, env):
        script = (
            "total = 0\n"
            "for name, score in sorted(scores.items()):\n"
            "    total += score\n"
            "count = 0\n"
            "while count < 3:\n"
            "    count += 1\n"
            "high = [n for n, s in scores.items() if s > 1]\n"
            "lookup = {n: s * 10 for n, s in scores.items()}\n"
            "first, (second, third) = 1, (2, 3)\n"
            "label = f'{total:>4}|{first!r}|{3.14159:.2f}'\n"
            "ratio = '%d%%' % 50\n"
            "caps = ' '.join(n.upper() for n in high)\n"
            "print('ignored')\n"
        )
        data = run(env, script, {"scores": {"a": 1, "b": 2}})
        assert data["total"] == 3 and data["count"] == 3
        assert data["high"] == ["b"] and data["lookup"] == {"a": 10, "b": 20}
        assert (data["first"], data["second"], data["third"]) == (1, 2, 3)
        assert data["label"] == "   3|1|3.14" and data["ratio"] == "50%" and data["caps"] == "B"

    def test_task_data_that_hides_a_helper_is_refused_with_the_name(self, env):
        with pytest.raises(ValueError, match="today"):
            run(env, "x = 1", {"today": "Monday"})

    def test_evaluate_returns_the_value_and_leaves_task_data_alone(self, env):
        data = {"score": 7, "items": [1, 2, 3]}
        with running_at(NOW):
            assert env.evaluate("score > 5 and len(items) == 3", data) is True
            assert env.evaluate("  sum(i * 2 for i in items)", data) == 12
        assert data == {"score": 7, "items": [1, 2, 3]}

    def test_evaluate_sees_the_external_context(self, env):
        assert env.evaluate("dmninputexpr == 'X'", {}, {"dmninputexpr": "X"}) is True

    def test_a_syntax_error_stays_a_syntax_error_as_in_spiffworkflow(self, env):
        with pytest.raises(SyntaxError):
            run(env, "x = = 1")

    def test_compiled_code_is_cached_by_source(self, env):
        before = scripting._compile.cache_info()
        for _ in range(3):
            env.evaluate("40 + 2 == 42 and 'cached'", {})
        after = scripting._compile.cache_info()
        assert after.misses - before.misses <= 1 and after.hits - before.hits >= 2

    def test_check_script_refuses_at_deploy_time(self):
        check_script("x = 1")
        check_script("score > 5", expression=True)
        with pytest.raises(ScriptRejected, match="imports are not allowed"):
            check_script("import os")


class TestHelpersFollowTheInjectedClock:
    def test_now_and_today_are_the_engine_time(self, env):
        data = run(env, "a = now()\nb = today()\nc = datetime.now()\nd = date.today()\ne = datetime.utcnow()")
        assert data == {"a": NOW, "b": date(2026, 3, 1), "c": NOW, "d": date(2026, 3, 1),
                        "e": datetime(2026, 3, 1)}

    def test_a_different_engine_time_gives_a_different_now(self, env):
        later = NOW + timedelta(days=40)
        assert run(env, "when = now()", at=later) == {"when": later}

    def test_scripts_build_plain_datetimes_the_serializer_knows(self, env):
        data = run(env, "built = datetime(2026, 1, 2)\nparsed = datetime.fromisoformat('2026-01-02')\n"
                        "same = isinstance(built, datetime) and isinstance(now(), datetime)")
        assert type(data["built"]) is datetime and type(data["parsed"]) is datetime
        assert data["same"] is True

    def test_date_helpers_are_available(self, env):
        data = run(env, (
            "due = add_business_days(date(2026, 3, 6), 1)\n"
            "span = business_days_between(date(2026, 3, 2), date(2026, 3, 9))\n"
            "month = add_duration(now(), 'P1M')\n"
            "stay = length_of_stay('2026-02-27T10:00:00+00:00')\n"
            "closed = length_of_stay(parse_datetime('2026-02-01'), parse_datetime('2026-02-03T08:00'))\n"
            "working = is_business_day(today())\n"
            "gap = now() - timedelta(hours=1) < now()\n"
        ))
        assert data["due"] == date(2026, 3, 9) and data["span"] == 5
        assert data["month"] == datetime(2026, 4, 1, tzinfo=timezone.utc)
        assert data["stay"] == 2 and data["closed"] == 2
        assert data["working"] is False and data["gap"] is True

    def test_now_outside_engine_work_is_an_error(self, env):
        with pytest.raises(RuntimeError, match="No engine time"):
            env.execute("when = now()", {})


ESCAPES = [
    "import os",
    "from os import path",
    "__import__('os')",
    "open('/etc/passwd')",
    "().__class__.__base__.__subclasses__()",
    "x.__class__",
    "getattr(x, '__cl' + 'ass__')",
    "'{0.__class__}'.format(1)",
    "str.format('{0.__class__}', 1)",
    "'{0.__class__}'.format_map({})",
    "eval('1')",
    "exec('x = 1')",
    "globals()",
    "type(1)",
    "datetime.mro()",
    "class Escape:\n    pass",
    "def f():\n    return f()\nf()",
    "10 ** 10 ** 10",
    "pow(10, 10 ** 10)",
    "1 << 10 ** 10",
    "'a' * 10 ** 10",
    "[0] * 10 ** 10",
    "for i in range(10 ** 12):\n    pass",
    "big = 'a' * 1000000\nbig.replace('', 'bb')",
    "big = [0] * 1000000\nbig.extend(big)",
    "big = [0] * 1000000\nbig[len(big):] = big",
    "big = 'a' * 1000000\n'-'.join([big, big])",
    "f'{1:>999999999}'",
    "'%999999999d' % 1",
    "sum([[0] * 1000] * 2000, [])",
    "round(1, -10 ** 8)",
]


class TestEscapesAreRefused:
    @pytest.mark.parametrize("script", ESCAPES)
    def test_escape_is_refused_and_nothing_leaks_into_task_data(self, env, script):
        data = {"x": 1}
        with pytest.raises(ScriptRejected):
            run(env, script, data)
        assert set(data) <= {"x", "big", "i"} and data["x"] == 1
        assert not LEFTOVER_NAMES & set(data)

    @pytest.mark.parametrize("script", ["'a'.encode()", "x.__class__", "__import__('os')", "(1).__class__"])
    def test_escape_in_an_expression_is_refused(self, env, script):
        with pytest.raises(ScriptRejected):
            env.evaluate(script, {"x": 1})

    def test_refusals_say_what_was_refused(self, env):
        with pytest.raises(ScriptRejected, match="imports are not allowed in scripts"):
            run(env, "import os")
        with pytest.raises(ScriptRejected, match="'open' is not available in scripts"):
            run(env, "open('/etc/passwd')")
        with pytest.raises(ScriptRejected, match="value too large"):
            run(env, "'a' * 10 ** 10")
        with pytest.raises(ScriptRejected, match="format"):
            run(env, "'{0.__class__}'.format(1)")


class TestRunawayScriptsEnd:
    @pytest.mark.parametrize("script", [
        "while True:\n    pass",
        "def forever():\n    while True:\n        yield 1\ntotal = sum(forever())",
        "def busy():\n    n = 0\n    while True:\n        n += 1\nbusy()",
        "done = [x for x in range(1000000) for y in range(1000000)]",
    ])
    def test_a_script_that_runs_too_long_is_stopped_near_its_limit(self, script):
        env = RestrictedEnvironment(time_limit_seconds=0.2)
        started = time.monotonic()
        with pytest.raises(ScriptRejected, match="longer than 0.2 s"):
            run(env, script)
        assert time.monotonic() - started < 10

    def test_a_script_that_catches_its_time_out_still_fails(self):
        env = RestrictedEnvironment(time_limit_seconds=0.2)
        script = "try:\n    while True:\n        pass\nexcept Exception:\n    pass\nescaped = True"
        with pytest.raises(ScriptRejected, match="longer than 0.2 s"):
            run(env, script)

    def test_an_expression_that_runs_too_long_is_stopped(self):
        env = RestrictedEnvironment(time_limit_seconds=0.2)
        with pytest.raises(ScriptRejected, match="longer than 0.2 s"):
            env.evaluate("[i for i in range(1000000) for j in range(1000000)]", {})

    @pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="memory is sampled from /proc")
    def test_a_script_that_hoards_memory_is_stopped(self):
        # A generous time limit, so that on a busy machine the memory guard, not the clock, stops it.
        env = RestrictedEnvironment(time_limit_seconds=60)
        with pytest.raises(ScriptRejected, match="memory"):
            run(env, "hoard = [[0] * 1000000 for i in range(100000)]")

    def test_the_default_time_limit_is_one_second(self):
        started = time.monotonic()
        with pytest.raises(ScriptRejected, match="longer than 1 s"):
            make_script_engine().environment.execute("while True:\n    pass", {})
        assert time.monotonic() - started < 10


SCRIPT_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="casework">
  <bpmn:process id="triage" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="score_patient" />
    <bpmn:scriptTask id="score_patient" name="Score patient">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="score_patient" targetRef="route" />
    <bpmn:exclusiveGateway id="route" default="low">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>high</bpmn:outgoing><bpmn:outgoing>low</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="high" sourceRef="route" targetRef="flag">
      <bpmn:conditionExpression>{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="low" sourceRef="route" targetRef="done" />
    <bpmn:scriptTask id="flag" name="Flag">
      <bpmn:incoming>high</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>flagged = True</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="flag" targetRef="done" />
    <bpmn:endEvent id="done"><bpmn:incoming>low</bpmn:incoming><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def run_process(script: str, condition: str = "score &gt; 5") -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(SCRIPT_PROCESS.format(script=script, condition=condition).encode(), "triage.bpmn")
    workflow = BpmnWorkflow(parser.get_spec("triage"), script_engine=make_script_engine())
    with running_at(NOW):
        workflow.do_engine_steps()
    return workflow


class TestInsideSpiffWorkflow:
    def test_a_good_script_sets_data_and_the_gateway_condition_routes_on_it(self):
        workflow = run_process("score = 7\nreviewed_at = now()")
        assert workflow.is_completed()
        assert workflow.data == {"score": 7, "reviewed_at": NOW, "flagged": True}

    def test_a_forbidden_script_fails_the_task_naming_the_cause(self):
        with pytest.raises(WorkflowTaskException, match="imports are not allowed") as caught:
            run_process("import os\nscore = 1")
        assert caught.value.error_type == "ScriptRejected"
        assert caught.value.task.task_spec.name == "score_patient"

    def test_a_forbidden_gateway_condition_fails_naming_the_cause(self):
        with pytest.raises(WorkflowTaskException, match="__class__"):
            run_process("score = 7", condition="score.__class__")

    def test_a_decision_table_still_evaluates(self):
        parser = SpiffBpmnParser()
        parser.add_bpmn_file(f"{CONFORMANCE}/business_rule_task.bpmn")
        parser.add_dmn_file(f"{CONFORMANCE}/business_rules.dmn")
        spec = parser.get_spec("Process_bd2e724")
        workflow = BpmnWorkflow(spec, parser.get_subprocess_specs("Process_bd2e724"),
                                script_engine=make_script_engine())
        with running_at(NOW):
            workflow.do_engine_steps()
        assert workflow.is_completed()
        assert workflow.data == {"question": "X", "answer": "Y"}
