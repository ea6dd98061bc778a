// What the designer page learns from the server about the draft: validation problems and process-test results,
// listed under the modeler and drawn on the open diagram (markers, a count badge, coverage). designer-modeler.js
// calls it; the lists are the full account, the drawing only shows where on the open file.
(function () {
  'use strict';

  var LINT = 'cw-lint';
  var SEVERITY = { error: { icon: '✖', word: 'Error' }, warning: { icon: '⚠', word: 'Warning' } };

  function plural(count, one, many) {
    return count + ' ' + (count === 1 ? one : many);
  }

  function node(tag, className, text) {
    var element = document.createElement(tag);
    if (className) {
      element.className = className;
    }
    if (text !== undefined && text !== null) {
      element.textContent = text;
    }
    return element;
  }

  function severityOf(problem) {
    return problem.severity === 'warning' ? 'warning' : 'error';
  }

  // options: files() the draft's paths; current() the open path; open(path, elementId) opens a file and shows the element.
  function Results(modeler, root, options) {
    this.modeler = modeler;
    this.root = root;
    this.options = options;
    this.problems = [];
    this.coverage = [];
    this.coverageShown = false;
    this.problemBox = root.querySelector('[data-problems]');
    this.problemSummary = root.querySelector('[data-problem-summary]');
    this.testBox = root.querySelector('[data-tests]');
    this.testSummary = root.querySelector('[data-test-summary]');
    this.coverageToggle = root.querySelector('[data-coverage-toggle]');
    this.coverageNote = root.querySelector('[data-coverage-note]');
    var results = this;
    this.coverageToggle.addEventListener('change', function () {
      results.coverageShown = results.coverageToggle.checked;
      results.draw();
    });
  }

  // A path as the server may write it ("bpmn/acute_hospital/x.bpmn", "acute_hospital/x.bpmn" or "x.bpmn") as a draft path.
  Results.prototype.draftPath = function (file) {
    if (!file) {
      return null;
    }
    var files = this.options.files();
    var path = String(file).replace(/^bpmn\//, '');
    var prefix = this.options.setName + '/';
    if (files.indexOf(path) === -1 && path.indexOf(prefix) === 0) {
      path = path.slice(prefix.length);
    }
    return files.indexOf(path) === -1 ? null : path;
  };

  Results.prototype.showProblems = function (problems, heading) {
    var results = this;
    this.problems = problems || [];
    var errors = this.problems.filter(function (problem) { return severityOf(problem) === 'error'; }).length;
    var warnings = this.problems.length - errors;
    var counts = plural(errors, 'error', 'errors') + ', ' + plural(warnings, 'warning', 'warnings');
    var verdict = errors ? ': the draft cannot be deployed until the errors are fixed.' : '.';
    this.problemSummary.textContent = (heading ? heading + ' ' : '') + (this.problems.length ? counts + verdict : 'No problems found.');
    this.problemSummary.setAttribute('data-errors', String(errors));
    var list = node('ol', 'problem-list');
    this.problems.forEach(function (problem) { list.appendChild(results.problemItem(problem)); });
    this.problemBox.replaceChildren(list);
    this.draw();
  };

  Results.prototype.problemItem = function (problem) {
    var results = this;
    var severity = severityOf(problem);
    var item = node('li', 'problem problem-' + severity);
    item.setAttribute('data-element-id', problem.element_id || '');
    var badge = node('span', 'problem-severity', SEVERITY[severity].icon + ' ' + SEVERITY[severity].word);
    item.append(badge, ' ', node('span', 'problem-message', problem.message));
    var where = [problem.file, problem.element_id, problem.line ? 'line ' + problem.line : null].filter(Boolean).join(' · ');
    var path = problem.file ? this.draftPath(problem.file) : problem.element_id ? this.options.current() : null;
    if (where && path && /\.bpmn$/i.test(path) && (problem.element_id || path !== this.options.current())) {
      var show = node('button', 'problem-where link-button', where);
      show.type = 'button';
      show.setAttribute('aria-label', 'Show ' + (problem.element_id || path) + ' in ' + path);
      show.addEventListener('click', function () { results.options.open(path, problem.element_id); });
      item.appendChild(show);
    } else if (where) {
      item.appendChild(node('span', 'problem-where', where));
    }
    return item;
  };

  Results.prototype.showTests = function (report) {
    var results = this;
    var outcomes = report.outcomes || [];
    var failed = outcomes.filter(function (outcome) { return !outcome.passed; }).length;
    this.testSummary.textContent = (report.problems || []).length
      ? 'The tests could not all run: ' + plural(report.problems.length, 'problem', 'problems') + ' below.'
      : !outcomes.length ? 'This set has no process tests (tests/*.yaml).'
        : failed ? plural(failed, 'test', 'tests') + ' of ' + outcomes.length + ' failed.'
          : 'All ' + plural(outcomes.length, 'test', 'tests') + ' passed.';
    this.testSummary.setAttribute('data-passed', report.passed ? 'true' : 'false');
    var box = [];
    if ((report.problems || []).length) {
      var problems = node('ul', 'test-problems');
      report.problems.forEach(function (text) { problems.appendChild(node('li', 'problem problem-error', '✖ ' + text)); });
      box.push(problems);
    }
    var list = node('ul', 'test-list');
    outcomes.forEach(function (outcome) {
      var item = node('li', 'test ' + (outcome.passed ? 'test-passed' : 'test-failed'));
      item.append(node('span', 'test-verdict', outcome.passed ? '✔ Passed' : '✖ Failed'), ' ', node('span', 'test-name', outcome.name));
      if ((outcome.failures || []).length) {
        var failures = node('ul', 'test-failures');
        outcome.failures.forEach(function (text) { failures.appendChild(node('li', null, text)); });
        item.appendChild(failures);
      }
      list.appendChild(item);
    });
    box.push(list);
    this.coverage = report.coverage || [];
    if (this.coverage.length) {
      box.push(this.coverageTable());
    }
    this.testBox.replaceChildren.apply(this.testBox, box);
    this.coverageToggle.disabled = !this.coverage.length;
    this.coverageToggle.checked = this.coverageShown = this.coverage.length > 0;
    this.draw();
  };

  Results.prototype.coverageTable = function () {
    var results = this;
    var table = node('table', 'tasks coverage-table');
    table.appendChild(node('caption', 'visually-hidden', 'Flow nodes the tests reached, per diagram file'));
    var head = node('tr');
    ['Diagram', 'Flow nodes reached', 'Sequence flows taken'].forEach(function (text) {
      var cell = node('th', null, text);
      cell.scope = 'col';
      head.appendChild(cell);
    });
    table.appendChild(node('thead')).appendChild(head);
    var body = table.appendChild(node('tbody'));
    this.coverage.forEach(function (file) {
      var row = node('tr');
      var name = node('th');
      name.scope = 'row';
      var path = results.draftPath(file.file);
      if (path && /\.bpmn$/i.test(path)) {
        var open = node('button', 'link-button', file.file);
        open.type = 'button';
        open.addEventListener('click', function () { results.options.open(path, null); });
        name.appendChild(open);
      } else {
        name.textContent = file.file;
      }
      var reached = (file.reached || []).length;
      var taken = (file.taken || []).length;
      row.append(name,
        node('td', 'num', Number(file.percent).toFixed(0) + '% (' + reached + ' of ' + (file.elements || []).length + ')'),
        node('td', 'num', taken + ' of ' + (file.flows || []).length));
      body.appendChild(row);
    });
    return table;
  };

  // Redraw the markers of the open file from what was last learned; called after every import too.
  Results.prototype.draw = function () {
    var canvas = this.modeler.get('canvas');
    var registry = this.modeler.get('elementRegistry');
    var overlays = this.modeler.get('overlays');
    var current = this.options.current();
    var results = this;
    var drawn = registry.filter(function (element) { return !element.labelTarget; });
    drawn.forEach(function (element) {
      ['lint-error', 'lint-warning', 'cw-covered', 'cw-uncovered'].forEach(function (marker) { canvas.removeMarker(element, marker); });
    });
    overlays.remove({ type: LINT });

    var byElement = {};
    this.problems.forEach(function (problem) {
      var path = problem.file ? results.draftPath(problem.file) : current;
      if (problem.element_id && path === current && registry.get(problem.element_id)) {
        (byElement[problem.element_id] = byElement[problem.element_id] || []).push(problem);
      }
    });
    Object.keys(byElement).forEach(function (id) {
      var problems = byElement[id];
      var worst = problems.some(function (problem) { return severityOf(problem) === 'error'; }) ? 'error' : 'warning';
      canvas.addMarker(id, 'lint-' + worst);
      var title = problems.map(function (problem) { return SEVERITY[severityOf(problem)].word + ': ' + problem.message; }).join('\n');
      overlays.add(id, LINT, {
        position: { top: -12, right: 12 },
        scale: { min: 1 },
        html: results.badge(worst, problems.length, title)
      });
    });
    this.root.setAttribute('data-lint-marked', Object.keys(byElement).sort().join(' '));
    this.drawCoverage(canvas, registry, current);
  };

  Results.prototype.badge = function (severity, count, title) {
    var badge = node('span', 'cw-badge cw-badge-' + severity, SEVERITY[severity].icon + ' ' + count);
    badge.title = title;
    badge.setAttribute('aria-label', title);
    return badge;
  };

  Results.prototype.drawCoverage = function (canvas, registry, current) {
    var results = this;
    var file = this.coverage.filter(function (entry) { return results.draftPath(entry.file) === current; })[0];
    var covered = [];
    var uncovered = [];
    if (this.coverageShown && file) {
      var mark = function (ids, reached) {
        (ids || []).forEach(function (id) {
          if (!registry.get(id)) {
            return;
          }
          var hit = (reached || []).indexOf(id) !== -1;
          canvas.addMarker(id, hit ? 'cw-covered' : 'cw-uncovered');
          (hit ? covered : uncovered).push(id);
        });
      };
      mark(file.elements, file.reached);
      mark(file.flows, file.taken);
    }
    this.root.setAttribute('data-covered', covered.sort().join(' '));
    this.root.setAttribute('data-uncovered', uncovered.sort().join(' '));
    this.coverageNote.textContent = !this.coverage.length ? 'Run the tests to see which steps they reach.'
      : !file ? 'The tests reach no step of this file.'
        : Number(file.percent).toFixed(0) + '% of this file\'s flow nodes reached by the tests' +
          (this.coverageShown ? ': reached steps are outlined solid (✔ covered), the others dashed (not covered).' : '.');
  };

  window.CaseworkDesigner = window.CaseworkDesigner || {};
  window.CaseworkDesigner.Results = Results;
}());
