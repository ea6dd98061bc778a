"""The validation rules added with severities: each warns or refuses when it should, and only then."""
from __future__ import annotations

import pytest

from workflows import catalog, lint_flow, lint_scripts, lint_tasks
from workflows.catalog import DiagramSet
from workflows.diagram_xml import parse_xml
from workflows.errors import ERROR, WARNING, DiagramError, DiagramProblem, ScriptRejected
from workflows.sandbox import check_script

DEFINITIONS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"\n'
    '    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"\n'
    '    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"\n'
    '    id="defs" targetNamespace="http://casework.example/bpmn">\n'
    "{body}\n"
    "</bpmn:definitions>\n"
)


def flows(*pairs: str) -> str:
    """Sequence flows "a>b" (or "a>b:condition"), with ids f_a_b."""
    out = []
    for pair in pairs:
        link, _, condition = pair.partition(":")
        source, target = link.split(">")
        body = f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>'
        out.append(f'<bpmn:sequenceFlow id="f_{source}_{target}" sourceRef="{source}" targetRef="{target}">'
                   f'{body if condition else ""}</bpmn:sequenceFlow>')
    return "".join(out)


def process(*elements: str, process_id: str = "main", lanes: str = "") -> str:
    return f'<bpmn:process id="{process_id}" isExecutable="true">{lanes}{"".join(elements)}</bpmn:process>'


def documents(*processes: str, extra: str = "") -> dict:
    root, problem = parse_xml("a.bpmn", DEFINITIONS.format(body=extra + "".join(processes)).encode())
    assert problem is None, problem
    return {"a.bpmn": root}


def problems(check, *processes: str, extra: str = "") -> list[tuple[str, str, str]]:
    """Run one check; return (severity, element id, message) of each problem it finds."""
    return [(p.severity, p.element_id, p.message) for p in check(documents(*processes, extra=extra))]


def user_task(task_id: str, **properties: str) -> str:
    props = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in properties.items())
    return (f'<bpmn:userTask id="{task_id}"><bpmn:extensionElements><spiffworkflow:properties>{props}'
            f"</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>")


def script_task(task_id: str, script: str) -> str:
    return f'<bpmn:scriptTask id="{task_id}"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'


START, END = '<bpmn:startEvent id="start"/>', '<bpmn:endEvent id="end"/>'
FORM = {"formJsonSchemaFilename": "review.schema.json"}


class TestSeverity:
    def test_a_warning_reads_as_a_warning_and_does_not_count_as_an_error(self):
        warning = DiagramProblem("check this.", "a.bpmn", "review", 9, severity=WARNING)
        assert str(warning) == "a.bpmn, element 'review', line 9: warning: check this."
        assert not warning.is_error and DiagramProblem("fix this.").is_error
        assert DiagramProblem("fix this.").severity == ERROR

    def test_a_diagram_error_holds_its_errors_only(self):
        error = DiagramError([DiagramProblem("w.", severity=WARNING), DiagramProblem("e.", "a.bpmn")])
        assert [p.message for p in error.problems] == ["e."] and str(error) == "a.bpmn: e."

    def test_a_diagram_error_of_warnings_alone_is_a_programming_mistake(self):
        with pytest.raises(ValueError, match="warnings alone"):
            DiagramError([DiagramProblem("w.", severity=WARNING)])


class TestLanes:
    def test_a_user_task_outside_every_lane_is_warned_about(self):
        found = problems(lint_tasks.check_human_tasks, process(START, user_task("review", **FORM), END))
        assert found == [(WARNING, "review", "user task is in no named lane, so no role is offered it and only "
                          "supervisors will see it; put it in the lane of the role that does this work.")]

    def test_a_user_task_in_a_named_lane_is_not(self):
        lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="case_manager">'
                 "<bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>")
        main = process(START, user_task("review", **FORM), END, lanes=lanes)
        assert problems(lint_tasks.check_human_tasks, main) == []

    def test_a_task_inside_a_sub_process_takes_the_sub_process_lane_as_spiffworkflow_does(self):
        lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="attending">'
                 "<bpmn:flowNodeRef>work</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>")
        sub = f'<bpmn:subProcess id="work">{user_task("inner", **FORM)}</bpmn:subProcess>'
        assert problems(lint_tasks.check_human_tasks, process(START, sub, END, lanes=lanes)) == []

    def test_a_lane_without_a_name_offers_the_task_to_no_role(self):
        lanes = ('<bpmn:laneSet id="ls"><bpmn:lane id="l"><bpmn:flowNodeRef>review</bpmn:flowNodeRef>'
                 "</bpmn:lane></bpmn:laneSet>")
        found = problems(lint_tasks.check_human_tasks, process(START, user_task("review", **FORM), END, lanes=lanes))
        assert [(severity, element) for severity, element, _ in found] == [(WARNING, "review")]


class TestForms:
    LANES = ('<bpmn:laneSet id="ls"><bpmn:lane id="l" name="case_manager">'
             "<bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>")

    def test_a_user_task_without_a_form_is_warned_about(self):
        found = problems(lint_tasks.check_human_tasks, process(START, user_task("review"), END, lanes=self.LANES))
        assert found == [(WARNING, "review", "user task names no form (formJsonSchemaFilename), so it is completed "
                          "with no data; name a JSON Schema form in its properties.")]

    def test_a_user_task_with_a_form_is_not(self):
        assert problems(lint_tasks.check_human_tasks, process(START, user_task("review", **FORM), END,
                                                              lanes=self.LANES)) == []


class TestGatewaysWithoutDefault:
    def gateway(self, kind: str, *, default: str = "", conditions=("x &gt; 1", "x &lt; 1")) -> str:
        attribute = f' default="{default}"' if default else ""
        return process(START, f'<bpmn:{kind} id="choose"{attribute}/>', '<bpmn:endEvent id="a"/>',
                       '<bpmn:endEvent id="b"/>',
                       flows("start>choose", f"choose>a:{conditions[0]}", f"choose>b:{conditions[1]}"))

    @pytest.mark.parametrize("kind", ["exclusiveGateway", "inclusiveGateway"])
    def test_a_condition_on_every_flow_and_no_default_is_warned_about(self, kind):
        [(severity, element, message)] = problems(lint_flow.check_gateway_defaults, self.gateway(kind))
        assert (severity, element) == (WARNING, "choose")
        assert "a case whose data matches none of them fails here" in message

    def test_a_gateway_with_a_default_flow_is_not(self):
        assert problems(lint_flow.check_gateway_defaults, self.gateway("exclusiveGateway", default="f_choose_b")) == []

    def test_an_inclusive_gateway_with_an_unconditional_flow_is_not(self):
        gateway = self.gateway("inclusiveGateway", conditions=("x &gt; 1", ""))
        assert problems(lint_flow.check_gateway_defaults, gateway) == []

    def test_an_empty_condition_counts_as_none_as_in_spiffworkflow(self):
        gateway = self.gateway("inclusiveGateway").replace("x &lt; 1", "")
        assert problems(lint_flow.check_gateway_defaults, gateway) == []


class TestConditions:
    def test_a_condition_that_is_not_python_is_refused(self):
        [(severity, element, message)] = problems(lint_scripts.check_scripts, TestGatewaysWithoutDefault().gateway(
            "exclusiveGateway", conditions=("${approved}", "x &lt; 1")))
        assert (severity, element) == (ERROR, "f_choose_a")
        assert message.startswith("the condition is not valid Python (")

    @pytest.mark.parametrize("condition, reason", [
        ("__import__('os').getcwd() == ''", "__import__"), ("open('/etc/passwd') != 1", "'open' is not available"),
    ])
    def test_a_condition_the_sandbox_forbids_is_refused(self, condition, reason):
        found = problems(lint_scripts.check_scripts, TestGatewaysWithoutDefault().gateway(
            "exclusiveGateway", conditions=(condition, "x &lt; 1")))
        assert [(s, e) for s, e, _ in found] == [(ERROR, "f_choose_a")]
        assert "uses what the script sandbox forbids" in found[0][2] and reason in found[0][2]

    def test_plain_conditions_and_the_default_flow_condition_pass(self):
        gateway = TestGatewaysWithoutDefault().gateway("exclusiveGateway", default="f_choose_b",
                                                       conditions=("len(items) &gt; 2", "never evaluated ${x}"))
        assert problems(lint_scripts.check_scripts, gateway) == []


class TestUnreachable:
    def test_an_element_no_flow_reaches_is_warned_about(self):
        found = problems(lint_flow.check_unreachable, process(START, script_task("orphan", "x = 1"), END,
                                                              flows("start>end", "orphan>end")))
        assert found == [(WARNING, "orphan", "no path of sequence flows reaches this element from a start event of "
                          "process 'main', so it never runs; connect it or delete it.")]

    def test_boundary_events_and_event_sub_processes_count_as_reached(self):
        boundary = ('<bpmn:boundaryEvent id="late" attachedToRef="work"><bpmn:timerEventDefinition id="t">'
                    '<bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>')
        event_sub = ('<bpmn:subProcess id="on_message" triggeredByEvent="true"><bpmn:startEvent id="s2"/>'
                     '<bpmn:endEvent id="e2"/>' + flows("s2>e2") + "</bpmn:subProcess>")
        main = process(START, user_task("work"), boundary, '<bpmn:endEvent id="e_late"/>', END, event_sub,
                       flows("start>work", "work>end", "late>e_late"))
        assert problems(lint_flow.check_unreachable, main) == []

    def test_an_element_no_flow_reaches_inside_a_sub_process_is_warned_about(self):
        sub = ('<bpmn:subProcess id="sub"><bpmn:startEvent id="s2"/><bpmn:endEvent id="e2"/>'
               '<bpmn:endEvent id="stray"/>' + flows("s2>e2") + "</bpmn:subProcess>")
        found = problems(lint_flow.check_unreachable, process(START, sub, END, flows("start>sub", "sub>end")))
        assert [(s, e) for s, e, _ in found] == [(WARNING, "stray")] and "sub-process 'sub'" in found[0][2]


class TestLoops:
    GATEWAY = '<bpmn:exclusiveGateway id="again" default="f_again_end"/>'

    def test_a_loop_with_nothing_to_wait_on_is_warned_about_with_its_elements(self):
        main = process(START, script_task("count", "n = n + 1"), self.GATEWAY, END,
                       flows("start>count", "count>again", "again>count:n &lt; 5", "again>end"))
        [(severity, element, message)] = problems(lint_flow.check_loops, main)
        assert (severity, element) == (WARNING, "again")
        assert "the loop through 'count', 'again' can turn without waiting" in message
        assert "about 250 passes" in message and "timer-cycle event sub-process" in message

    def test_a_loop_that_waits_for_a_person_every_turn_is_not(self):
        main = process(START, user_task("review"), self.GATEWAY, END,
                       flows("start>review", "review>again", "again>review:more", "again>end"))
        assert problems(lint_flow.check_loops, main) == []

    def test_a_loop_with_a_path_around_its_wait_is_warned_about(self):
        main = process(START, user_task("review"), script_task("skip", "n = 1"), self.GATEWAY,
                       '<bpmn:exclusiveGateway id="which" default="f_which_review"/>', END,
                       flows("start>which", "which>review", "which>skip:quick", "review>again", "skip>again",
                             "again>which:more", "again>end"))
        [(severity, element, message)] = problems(lint_flow.check_loops, main)
        assert (severity, element) == (WARNING, "again") and "'skip'" in message and "'review'" not in message

    def test_a_loop_through_a_call_activity_whose_process_waits_is_not(self):
        called = process('<bpmn:startEvent id="s2"/>', user_task("call_back"), '<bpmn:endEvent id="e2"/>',
                         flows("s2>call_back", "call_back>e2"), process_id="chase")
        main = process(START, '<bpmn:callActivity id="chase_up" calledElement="chase"/>', self.GATEWAY, END,
                       flows("start>chase_up", "chase_up>again", "again>chase_up:more", "again>end"))
        assert problems(lint_flow.check_loops, main, called) == []


class TestScripts:
    @pytest.mark.parametrize("element, reason", [
        (script_task("s", "import os"), "imports are not allowed"),
        (script_task("s", "f = open('/tmp/x', 'w')"), "'open' is not available in scripts"),
        (script_task("s", "x = name.encode()"), "'.encode' is not allowed in scripts"),
        ('<bpmn:task id="s"><bpmn:extensionElements><spiffworkflow:preScript>__builtins__</spiffworkflow:preScript>'
         "</bpmn:extensionElements></bpmn:task>", '"__builtins__" is an invalid variable name'),
    ])
    def test_a_script_using_what_the_sandbox_forbids_is_refused(self, element, reason):
        [(severity, element_id, message)] = problems(lint_scripts.check_scripts, process(START, element, END))
        assert (severity, element_id) == (ERROR, "s") and reason in message

    def test_a_post_script_that_is_not_python_is_refused_with_its_line(self):
        task = ('<bpmn:task id="s"><bpmn:extensionElements><spiffworkflow:postScript>x = 1\ny = = 2'
                "</spiffworkflow:postScript></bpmn:extensionElements></bpmn:task>")
        [(severity, _, message)] = problems(lint_scripts.check_scripts, process(START, task, END))
        assert severity == ERROR and message.startswith("the post-script is not valid Python on its line 2")

    def test_scripts_using_the_helpers_pass(self):
        script = "due = add_business_days(today(), 2)\ndef twice(v):\n    return v * 2\nn = twice(len(items))"
        assert problems(lint_scripts.check_scripts, process(START, script_task("s", script), END)) == []

    def test_a_script_may_call_its_own_function_named_like_a_refused_builtin(self):
        check_script("def format(v):\n    return str(v)\nx = format(1)")
        with pytest.raises(ScriptRejected, match="'format' is not available"):
            check_script("x = format(1)")

    def test_a_timer_expression_the_sandbox_forbids_is_refused(self):
        timer = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="t"><bpmn:timeDuration>'
                 "open('/tmp/x').read()</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>")
        main = process(START, timer, END, flows("start>wait", "wait>end"))
        files = {"a.bpmn": DEFINITIONS.format(body=main).encode()}
        [problem] = catalog.validate(DiagramSet("t", files))
        assert (problem.severity, problem.element_id) == (ERROR, "wait")
        assert "timer duration uses what the script sandbox forbids ('open' is not available" in problem.message


class TestDueRules:
    @pytest.mark.parametrize("properties, message", [
        ({"dueIn": "P1X"}, "dueIn: 'P1X' is not an ISO 8601 duration"),
        ({"dueIn": "24 hours"}, "dueIn must be an ISO 8601 duration such as \"PT24H\", or the name of a case-data"),
        ({"dueIn": "P1D", "calendar": "working days"}, "calendar must be \"business\", \"calendar\" or the name"),
        ({"dueIn": "P1D", "dueFrom": "admitted at"}, "dueFrom must name a case-data variable"),
        ({"dueIn": "P1D", "dueTime": "25:00"}, "dueTime: '25:00' is not a time of day"),
        ({"dueIn": "P1M", "calendar": "business"}, "counts years or months, which a business calendar cannot"),
        ({"dueIn": "P1.5D", "calendar": "business"}, "counts part of a day"),
        ({"dueTime": "12:00"}, "dueTime is set but dueIn is not, so the task gets no due date"),
    ])
    def test_a_malformed_due_rule_is_refused(self, properties, message):
        found = problems(lint_tasks.check_human_tasks, process(START, user_task("review", **FORM, **properties), END))
        errors = [(element, text) for severity, element, text in found if severity == ERROR]
        assert len(errors) == 1 and errors[0][0] == "review", found
        assert errors[0][1].startswith("the due rule is not valid: ") and message in errors[0][1]

    @pytest.mark.parametrize("properties", [
        {"dueIn": "PT24H"}, {"dueIn": "review_window"}, {"dueIn": "P2D", "calendar": "Business"},
        {"dueIn": "P1D", "calendar": "ur_calendar", "dueFrom": "admitted_at", "dueTime": "24:00"}, {},
    ])
    def test_a_well_formed_due_rule_passes(self, properties):
        found = problems(lint_tasks.check_human_tasks, process(START, user_task("review", **FORM, **properties), END))
        assert [problem for problem in found if problem[0] == ERROR] == []


class TestTimerExpressions:
    def test_an_iso_8601_value_left_unquoted_inside_a_timer_expression_is_an_error(self):
        from workflows.lint import timer_problem

        message = timer_problem("timer date", "add_duration(observation_started_at, PT24H).isoformat()")
        assert message == ("timer date 'add_duration(observation_started_at, PT24H).isoformat()' uses PT24H as a "
                           "variable name; an ISO 8601 value inside an expression must be quoted too, e.g. \"PT24H\".")

    def test_the_same_expression_quoted_and_names_that_only_start_like_a_period_are_accepted(self):
        from workflows.lint import timer_problem

        assert timer_problem("timer date", 'add_duration(observation_started_at, "PT24H").isoformat()') is None
        assert timer_problem("timer date", "P1D_review_at") is None
        assert timer_problem("timer duration", "review_cadence") is None
