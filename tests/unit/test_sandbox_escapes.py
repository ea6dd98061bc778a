"""Every way out of the script sandbox we know of is refused, changes no task data and harms nothing.

The corpus is grouped by technique. Each attempt must end in ScriptRejected (an incident,
never a hung or swapping worker), leave the task data exactly as it was, and leave the
interpreter as it found it: the next good script runs and every global is unchanged.
"""
from __future__ import annotations

import builtins
import copy
import sys
import types
from datetime import date, datetime, timedelta, timezone

import pytest
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from workflows import sandbox, sandbox_guards, scripting
from workflows.clock import running_at
from workflows.errors import ScriptRejected
from workflows.scripting import HELPERS, SAFE_BUILTINS, RestrictedEnvironment

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
HUGE_NUMBER = "n = int('f' * 1000000, 16)\n"
SHARED = "t = (0,) * 1000000\nu = [t] * 1000000\n"  # a few MB in memory, 10**12 items as text

IMPORTS = [
    "import os", "import os.path", "import os as system", "from os import path", "from os import *",
    "from . import sibling", "from .. import parent", "import importlib\nimportlib.import_module('os')",
    "import builtins", "from builtins import open", "m = builtins.open", "import sys\nm = sys.modules",
    "__import__('os')", "m = __builtins__['__import__']('os')", "b = __builtins__.__dict__", "b = __builtins__",
    "loader = __loader__", "spec = __spec__", "name = __name__", "m = get_value('__builtins__')",
    "exec('import os')", "eval('__import__(\"os\")')", "c = compile('1', 'f', 'eval')",
    "f = open\nf('/etc/passwd')", "open('/etc/passwd')", "breakpoint()", "help()", "input()",
]
CLASS_WALKS = [
    "().__class__.__base__.__subclasses__()", "''.__class__.__mro__[1].__subclasses__()",
    "[].__class__.__bases__[0].__subclasses__()", "{}.__class__", "t = type(x)", "k = type\nk(x)",
    "o = object.__subclasses__()", "o = object()", "r = x.__reduce_ex__(2)", "r = [].__reduce__()",
    "f = lambda: 0\ng = f.__globals__", "g = now.__globals__['sys']", "g = get_value.__globals__",
    "g = add_business_days.__globals__", "m = datetime.mro()", "m = str.mro()", "m = int.mro()",
    "m = KeyError.mro()", "s = len.__self__", "s = datetime.now.__self__", "s = datetime.now.__func__",
    "i = x.__init__.__globals__", "s = super()", "c = classmethod(len)", "p = property(len)",
    "s = staticmethod(len)", "m = memoryview(b'')", "b = bytearray(10)", "b = bytes(10)", "i = id(x)",
]
FORMAT_WALKS = [
    "'{0.__class__}'.format(1)", "'{0.__class__.__base__.__subclasses__}'.format(x)",
    "'{x.__class__}'.format_map({'x': 1})", "str.format('{0.__class__}', 1)", "f = str.format",
    "f = str.format_map", "f = 'x'.format", "s = '{0.__globals__}'.format(get_value)", "format(x, '')",
    "s = f'{x.__class__}'", "s = f'{x!r:>{10 ** 9}}'", "s = f'{x!s:{\"9\" * 5000}}'",
    "s = f'{x:>{\"1\" + \"0\" * 8}}'", "s = '%(a)999999999s' % {'a': 1}", "s = '%*d' % (10 ** 9, 1)",
    "s = '%.*f' % (10 ** 9, 1.0)", "s = '%0999999999d' % 1", "w = '9' * 5000\ns = ('%' + w + 'd') % 1",
    "s = now().strftime('%999999999Y')", "s = datetime.strftime(now(), '%999999999Y')",
    "s = today().strftime('%-99999999d')", "s = now().strftime('%9999Y' * 1000)",
    "s = f'{now():%999999999Y}'", "s = f'{today():{\"%9999Y\" * 1000}}'", "s = 'a'.encode()",
    "s = str.maketrans('a', 'b')", "s = 'a'.translate({97: 'b' * 10 ** 6})",
]
COMPUTED_NAMES = [
    "getattr(x, '__cl' + 'ass__')", "g = getattr\ng(x, 'real')", "v = list(map(getattr, [x], ['real']))",
    "f = [getattr][0]\nf(x, 'real')", "f = {'g': getattr}['g']\nf(x, 'real')", "n = sorted([x], key=getattr)",
    "h = hasattr(x, 'real')", "setattr(x, 'y', 1)", "delattr(x, 'y')", "v = vars()", "v = vars(x)",
    "d = dir()", "d = dir(datetime)", "g = globals()", "l = locals()", "a = x.__getattribute__('__class__')",
    "a = object.__getattribute__(x, '__class__')", "d = x.__dict__", "d = datetime.__dict__",
    "a = (1).__class__", "e = Exception('x')\nt = e.__traceback__", "i = iter(int, 1)",
]
FRAMES = [
    "g = (i for i in [1])\nf = g.gi_frame", "def gen():\n    yield 1\nc = gen().gi_code",
    "g = (i for i in [1])\nf = g.gi_frame.f_back.f_globals", "g = (i for i in [1])\ny = g.gi_yieldfrom",
    "g = (i for i in [1])\nl = g.gi_frame.f_locals", "async def c():\n    pass",
    "async def c():\n    await c()", "c = (lambda: 0).__code__.co_code",
    "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    t = e.__traceback__.tb_frame.f_globals",
    "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    t = e.with_traceback(None).__traceback__",
    "f = sys._getframe(0)", "def c():\n    yield 1\nf = c().cr_frame", "def c():\n    yield 1\nf = c().ag_frame",
]
FUNCTION_INTERNALS = [
    "f = lambda: 0\nc = f.__code__", "def f(a=[]):\n    return a\nd = f.__defaults__",
    "def f(*, a=1):\n    return a\nd = f.__kwdefaults__",
    "def outer():\n    v = 1\n    def inner():\n        return v\n    return inner\nc = outer().__closure__",
    "f = now.__wrapped__", "c = get_value.__code__.co_consts", "n = now.__name__",
]
HUGE_VALUES = [
    "s = 'a' * 10 ** 10", "l = [0] * 10 ** 10", "t = (0,) * 10 ** 10", "d = {i: i for i in range(10 ** 8)}",
    "s = {i for i in range(10 ** 8)}", "d = dict.fromkeys(range(10 ** 8))", "n = 10 ** 10 ** 10",
    "n = 2 ** 2 ** 20", "n = 1 << 10 ** 10", "n = pow(10, 10 ** 10)", "r = range(10 ** 12)",
    "s = 'ab'\nwhile True:\n    s = s + s", "s = 'ab'\nwhile True:\n    s += s",
    "l = [0]\nfor i in range(100):\n    l = l + l", "l = [0] * 1000\nl *= 10 ** 6", "l = [0] * 1000000\nl += l",
    "l = [0] * 1000000\nl.extend(l)", "l = [0] * 1000000\nlist.extend(l, l)",
    "l = [0] * 1000000\nl[len(l):] = l", "l = [0] * 1000000\nl += (i for i in l)",
    "s = 'a'.ljust(10 ** 9)", "s = 'a'.rjust(10 ** 9)", "s = 'a'.center(10 ** 9)", "s = '1'.zfill(10 ** 9)",
    "s = str.ljust('a', 10 ** 9)", "s = str.rjust('a', 10 ** 9)", "s = str.center('a', 10 ** 9)",
    "s = str.zfill('1', 10 ** 9)", "s = ('\\t' * 1000).expandtabs(10 ** 6)",
    "s = str.expandtabs('\\t' * 1000, 10 ** 6)", "s = ('a' * 1000).replace('a', 'a' * 10 ** 5)",
    "s = str.replace('a' * 1000, 'a', 'a' * 10 ** 5)", "s = '-'.join(['a' * 1000000] * 2)",
    "s = str.join('', ['a' * 1000000] * 100)", "s = '{:>999999999}'.format(1)", "s = f'{1:>999999999}'",
    "n = int('9' * 5000)", HUGE_NUMBER + "s = str(n)", HUGE_NUMBER + "m = n // 3", HUGE_NUMBER + "m = n % 7",
    HUGE_NUMBER + "m = divmod(n, 7)", HUGE_NUMBER + "m = pow(n, n, n + 2)", HUGE_NUMBER + "m = round(n, -5)",
    HUGE_NUMBER + "m = n * n", "n = int.from_bytes([255] * 1000000, 'big')", "n = (0).from_bytes([1], 'big')",
    SHARED + "s = str(u)", SHARED + "s = repr(u)", SHARED + "s = f'{u}'", SHARED + "s = '%s' % (u,)",
    SHARED + "print(u)", SHARED + "same = u == list(u)", SHARED + "found = (0,) in u",
    SHARED + "found = tuple(list(t)) in u", SHARED + "s = sorted(u)", SHARED + "m = max(u)", SHARED + "u.sort()",
    SHARED + "list.sort(u)", SHARED + "i = u.index(tuple(list(t)))", SHARED + "n = u.count(tuple(list(t)))",
    SHARED + "u.remove(tuple(list(t)))", "t = (0,) * 1000000\nv = (t,) * 1000\ni = v.index(tuple(list(t)))",
    SHARED + "raise ValueError(u)",
    SHARED + "try:\n    raise KeyError(u)\nexcept KeyError as e:\n    raise ValueError('x') from e",
    "u = [[0] * 1000000] * 1000000", "x = 2 ** 13999 * 2 ** 13999",
    "d = []\nfor i in range(1000):\n    d = [d]", "l = []\nl.append(l)", "l = []\nl.append(l)\ns = str(l)",
    "hoard = [[0] * 1000000 for i in range(100000)]",
]
ENDLESS = [
    "while True:\n    pass", "l = [1]\nfor i in l:\n    l.append(i)", "l = [1]\nn = any(map(l.append, l))",
    "l = [1]\nn = list(filter(l.append, l))", "l = [1]\nl.extend(map(l.append, l))",
    "def gen():\n    while True:\n        yield 1\nn = sum(gen())",
    "n = [x for x in range(1000000) for y in range(1000000)]",
    "n = [[[0 for a in range(1000)] for b in range(1000)] for c in range(1000)]",
    "n = {i: [j for j in range(1000000)] for i in range(1000000)}",
    "try:\n    while True:\n        pass\nexcept Exception:\n    pass\nescaped = True",
    "while True:\n    try:\n        while True:\n            pass\n    except Exception:\n        pass",
]
RECURSION = [
    "def f():\n    return f()\nf()", "def a():\n    return b()\ndef b():\n    return a()\na()",
    "f = lambda: f()\nf()", "f = lambda n=0: f(n + 1)\nf()", "def f(g=lambda: f()):\n    return g()\nf()",
    "def f(n):\n    return [f(n + 1) for i in [1]]\nf(0)", "d = {}\nd['f'] = lambda: d['f']()\nd['f']()",
    "def f():\n    try:\n        f()\n    except Exception:\n        f()\nf()",
]
ESCAPES = [
    pytest.param(script, id=f"{group}-{index}")
    for group, scripts in (("import", IMPORTS), ("class-walk", CLASS_WALKS), ("format", FORMAT_WALKS),
                           ("computed-name", COMPUTED_NAMES), ("frame", FRAMES), ("function", FUNCTION_INTERNALS),
                           ("huge", HUGE_VALUES), ("endless", ENDLESS), ("recursion", RECURSION))
    for index, script in enumerate(scripts)
]
EXPRESSION_ESCAPES = [
    "x.__class__", "__import__('os')", "getattr(x, 'real')", "'a' * 10 ** 10", "str.ljust('a', 10 ** 9)",
    "[i for i in range(1000000) for j in range(1000000)]", "'{0.__class__}'.format(x)", "f'{x:>{10 ** 9}}'",
    "patient['visits'].append(1) or 'a' * 10 ** 10", "patient.update(leak=1) or [[0] * 1000000] * 1000000",
    "(lambda f: f(f))(lambda f: f(f))", "[[0] * 1000000] * 1000000",
]
# Names a script cannot even see: the attempt fails as any misspelt name does.
UNDEFINED = ["m = sys.modules", "s = os.system", "a = operator.attrgetter",
             "t = string.Template", "f = inspect.currentframe()", "m = importlib.import_module"]
# get_value called by a guard, a builtin or *args: it hands over task data, never a module's globals.
INDIRECT_GET_VALUE = [
    "found = [get_value(*['builtins'])]", "found = list(map(get_value, ['operator', 'sys']))",
    "found = []\nfound += map(get_value, ['operator'])", "found = []\nfound.extend(map(get_value, ['re']))",
    "found = []\nfound[0:0] = map(get_value, ['time'])", "found = sorted(['mmap'], key=get_value)",
    "found = [max(['builtins', 'x'], key=lambda n: str(get_value(n)))]",
    "found = list(filter(get_value, ['SAFE_BUILTINS', 'full_write_guard']))",
    "found = sum(map(lambda n: [get_value(n)], ['REFUSED_BUILTINS']), [])",
]


def task_data() -> dict:
    return {"x": 1, "score": 3, "patient": {"mrn": "A-100", "visits": [1, 2]}}


def run(env: RestrictedEnvironment, script: str, data: dict) -> dict:
    with running_at(NOW):
        env.execute(script, data)
    return data


def interpreter_state() -> dict[str, object]:
    """Every global a script could try to change, by identity."""
    watched = {"builtins": vars(builtins), "scripting": vars(scripting), "sandbox": vars(sandbox),
               "sandbox_guards": vars(sandbox_guards), "SAFE_BUILTINS": SAFE_BUILTINS,
               "GUARDS": sandbox._GUARDS, "HELPERS": HELPERS}
    # The warnings machinery keeps its own registry in the module that warned: not the script's doing.
    state = {f"{name}.{key}": id(value) for name, mapping in watched.items()
             for key, value in mapping.items() if key != "__warningregistry__"}
    state["limits"] = (sys.getrecursionlimit(), sys.get_int_max_str_digits())
    return state


@pytest.fixture
def env() -> RestrictedEnvironment:
    return RestrictedEnvironment(time_limit_seconds=0.3)


def assert_unharmed(env: RestrictedEnvironment, before: dict) -> None:
    after = interpreter_state()
    assert [key for key in before.keys() | after.keys() if before.get(key) != after.get(key)] == []
    after = run(env, "total = score + 1\nwhen = now()\nlabel = f'{total:>3}'", task_data())
    assert (after["total"], after["when"], after["label"]) == (4, NOW, "  4")


class TestEveryEscapeIsRefused:
    @pytest.mark.parametrize("script", ESCAPES)
    def test_the_attempt_ends_in_script_rejected_and_changes_nothing(self, env, script):
        data, before = task_data(), interpreter_state()
        with pytest.raises(ScriptRejected):
            run(env, script, data)
        assert data == task_data()
        assert_unharmed(env, before)

    @pytest.mark.parametrize("expression", EXPRESSION_ESCAPES)
    def test_an_expression_attempt_is_refused_and_changes_nothing(self, env, expression):
        data, before = task_data(), interpreter_state()
        with pytest.raises(ScriptRejected), running_at(NOW):
            env.evaluate(expression, data)
        assert data == task_data()
        assert_unharmed(env, before)

    def test_a_script_that_fails_half_way_leaves_no_partial_values(self, env):
        data = task_data()
        with pytest.raises(ScriptRejected):
            run(env, "note = 'written'\npatient['mrn'] = 'changed'\npatient['visits'].append(3)\n'a' * 10 ** 10", data)
        assert data == task_data()

    @pytest.mark.parametrize("script", UNDEFINED)
    def test_modules_are_not_even_names_in_a_script(self, env, script):
        data, before = task_data(), interpreter_state()
        with pytest.raises(NameError):
            run(env, script, data)
        assert data == task_data()
        assert_unharmed(env, before)


class TestHelpersHandOverNothingButTaskData:
    @pytest.mark.parametrize("script", INDIRECT_GET_VALUE)
    def test_get_value_called_indirectly_finds_no_module_globals(self, env, script):
        data = run(env, script, task_data())
        assert all(value is None or type(value) is str for value in data["found"]), data["found"]

    def test_get_value_still_reads_task_data_however_it_is_called(self, env):
        script = "a = get_value('score')\nb = get_value(*['patient'])\nc = list(map(get_value, ['x']))"
        data = run(env, script, task_data())
        assert (data["a"], data["b"], data["c"]) == (3, {"mrn": "A-100", "visits": [1, 2]}, [1])

    def test_get_value_outside_a_script_is_refused(self):
        with pytest.raises(ScriptRejected, match="only be called by a script"):
            scripting.get_value("x")

    def test_nothing_a_script_can_name_leads_to_a_module_a_frame_or_a_refused_builtin(self):
        refused = {id(getattr(builtins, name)) for name in sandbox.REFUSED_BUILTINS if hasattr(builtins, name)}
        dangerous = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType)
        samples = ["", 0, 0.5, [], {}, set(), (), NOW, date(2026, 1, 1), timedelta(1), Exception("x")]
        reached, frontier = {}, [(name, value) for name, value in {**HELPERS, **SAFE_BUILTINS}.items()]
        frontier += [(type(sample).__name__, sample) for sample in samples]
        for _ in range(3):
            found = []
            for path, value in frontier:
                if id(value) in reached:
                    continue
                reached[id(value)] = path
                assert not isinstance(value, dangerous), path
                assert id(value) not in refused, path
                for name in dir(value):
                    if name.startswith("_") or name in INSPECT_ATTRIBUTES or name in sandbox_guards.DENIED_ATTRIBUTES:
                        continue
                    try:
                        found.append((f"{path}.{name}", sandbox_guards._getattr(value, name)))
                    except Exception:
                        continue
            frontier = found
        assert len(reached) > 500, "the walk reached what scripts can reach"


class TestWhatStillWorks:
    def test_a_key_function_cannot_grow_what_min_and_max_walk(self, env):
        data = run(env, "l = [1]\nhigh = max(l, key=l.append)", {})
        assert data == {"l": [1, 1], "high": 1}

    def test_ordinary_comparisons_formatting_and_arithmetic_still_work(self, env):
        data = run(env, (
            "a = 1 < score <= 3\nb = 'mrn' in patient\nc = [1, 2] == patient['visits']\nd = 2 not in [1]\n"
            "e = str(patient)\nf = repr([1])\ng = '%(n)05d' % {'n': 7}\nh = today().strftime('%Y-%m-%d')\n"
            "i = f'{now():%H:%M}'\nj = divmod(17, 5)\nk = pow(3, 4, 5)\nl = 10 ** 100 // 7 % 1000\n"
            "m = str.join('-', ['a', 'b'])\nn = list(map(str.upper, ['a']))\no = max([3, 9, 4])\n"
            "p = isinstance('a', str) and isinstance(1, int)\nq = round(2.675, 2)\nr = list(filter(None, [0, 1]))\n"
            "s = sorted(['b', 'a'], reverse=True)\nt = [3, 1, 2]\nt.sort()\nu = [min(t), t.index(2), t.count(3)]\n"
            "v = datetime.strptime('2026-03-01', '%Y-%m-%d')\n"
        ), task_data())
        assert (data["a"], data["b"], data["c"], data["d"]) == (True, True, True, True)
        assert data["e"] == "{'mrn': 'A-100', 'visits': [1, 2]}" and data["f"] == "[1]" and data["g"] == "00007"
        assert (data["h"], data["i"], data["j"], data["k"]) == ("2026-03-01", "09:30", (3, 2), 1)
        assert data["l"] == 10 ** 100 // 7 % 1000 and data["m"] == "a-b" and data["n"] == ["A"] and data["o"] == 9
        assert data["p"] is True and data["q"] == 2.67 and data["r"] == [1]
        assert data["s"] == ["b", "a"] and data["t"] == [1, 2, 3] and data["u"] == [1, 1, 1]
        assert data["v"] == datetime(2026, 3, 1)

    def test_a_value_a_case_cannot_store_is_refused_naming_it(self, env):
        with pytest.raises(ScriptRejected, match="'g' holds a generator"):
            run(env, "g = (i for i in [1])", {})
        with pytest.raises(ScriptRejected, match="'d' is nested more than 100 levels"):
            run(env, "d = []\nfor i in range(200):\n    d = [d]", {})
        with pytest.raises(ScriptRejected, match="'k' has a tuple as a dict key"):
            run(env, "k = {(1, 2): 'pair'}", {})
