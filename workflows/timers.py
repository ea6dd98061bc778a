"""Timer event definitions that follow the injected clock instead of the wall clock.

SpiffWorkflow's own definitions call `datetime.now(timezone.utc)` inside the library.
These subclasses read `clock.current_time()` instead; `install_clocked_timers` swaps
them into parsed specs, and the serializer registers them by their own names.
"""
from __future__ import annotations

from datetime import timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from .clock import current_time, waiting_timers_fire


def _parse_recurring_interval(expression: str):
    """Like TimerEventDefinition.parse_iso_recurring_interval, but a bare duration starts now."""
    components = expression.upper().replace("--", "/").strip("R").split("/")
    if len(components) == 2 and components[1].startswith("P"):
        cycles = int(components[0]) if components[0] else -1
        parsed = TimerEventDefinition.parse_iso_duration(components[1])
        duration = TimerEventDefinition.get_timedelta_from_start(parsed, current_time())
        return cycles, current_time() + duration, duration
    return TimerEventDefinition.parse_iso_recurring_interval(expression)


class ClockedTimeDateEventDefinition(TimeDateEventDefinition):
    def has_fired(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            my_task._set_internal_data(event_value=event_value)
        elif not waiting_timers_fire():
            return my_task._get_internal_data("event_fired", False)
        if TimerEventDefinition.parse_time_or_duration(event_value) <= current_time():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockedDurationTimerEventDefinition(DurationTimerEventDefinition):
    def has_fired(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            parsed = TimerEventDefinition.parse_iso_duration(expression)
            start = current_time()
            event_value = (start + TimerEventDefinition.get_timedelta_from_start(parsed, start)).isoformat()
            my_task._set_internal_data(event_value=event_value)
        elif not waiting_timers_fire():
            return my_task._get_internal_data("event_fired", False)
        if TimerEventDefinition.get_datetime(event_value) <= current_time():
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockedCycleTimerEventDefinition(CycleTimerEventDefinition):
    def cycle_complete(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            cycles, start, duration = _parse_recurring_interval(expression)
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
        elif not waiting_timers_fire():
            return False

        ready = False
        if event_value["cycles"] != 0:
            next_event = TimerEventDefinition.get_datetime(event_value["next"])
            if next_event <= current_time():
                event_value["next"] = (next_event + timedelta(seconds=event_value["duration"])).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True

        my_task._set_internal_data(event_value=event_value)
        return ready


CLOCKED_TIMERS = {
    TimeDateEventDefinition: ClockedTimeDateEventDefinition,
    DurationTimerEventDefinition: ClockedDurationTimerEventDefinition,
    CycleTimerEventDefinition: ClockedCycleTimerEventDefinition,
}


def _clocked(event_definition) -> None:
    if isinstance(event_definition, MultipleEventDefinition):
        for inner in event_definition.event_definitions:
            _clocked(inner)
        return
    replacement = CLOCKED_TIMERS.get(type(event_definition))
    if replacement is not None:
        event_definition.__class__ = replacement


def install_clocked_timers(specs) -> None:
    """Make every timer in these process specs follow the injected clock."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            event_definition = getattr(task_spec, "event_definition", None)
            if event_definition is not None:
                _clocked(event_definition)
