// The designer's side panel: the Casework properties of the element selected on the bpmn-js modeler (window.BpmnJS,
// with designer-moddle.js's spiffworkflow types). Every edit is one command on the modeler's command stack, so the
// modeler's Undo takes back a whole edit, containers it created included.
(function () {
  'use strict';

  var MULTI = 'casework.multi';
  var DUE_RULE = [
    ['dueIn', 'Due in', 'An ISO 8601 duration (PT24H, P1D) or the name of a case variable holding one.'],
    ['calendar', 'Calendar', '"business" counts working days and hours, "calendar" (the default) every day; or a case variable.'],
    ['dueFrom', 'Due from', 'A case variable holding the moment the clock starts; empty: when the task opens.'],
    ['dueTime', 'Due at time of day', 'HH:MM, local time, e.g. 12:00 for noon of the day "Due in" reaches.']
  ];
  var FORM = [
    ['formJsonSchemaFilename', 'Form schema file', 'A JSON Schema file in forms/, e.g. admission_review.schema.json.'],
    ['formUiSchemaFilename', 'Form UI schema file', 'Optional: the form\'s UI schema file in forms/.']
  ];
  var DEFAULT_FLOW_GATEWAYS = ['bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway', 'bpmn:ComplexGateway'];
  var TIMER_KINDS = [['timeDate', 'Date'], ['timeDuration', 'Duration'], ['timeCycle', 'Cycle']];
  var PYTHON_HINT = 'Timer expressions are Python: quote a literal value, e.g. "PT24H" or "2026-03-04T12:00:00Z", ' +
    'or name a case variable holding one.';

  function is(object, type) {
    return !!object && typeof object.$instanceOf === 'function' && object.$instanceOf(type);
  }

  function extensions(bo, type) {
    var values = (bo.extensionElements && bo.extensionElements.values) || [];
    return values.filter(function (value) { return is(value, type); });
  }

  function without(list, item) {
    return (list || []).filter(function (value) { return value !== item; });
  }

  function Panel(modeler, root, options) {
    this.modeler = modeler;
    this.root = root;
    this.fieldsBox = root.querySelector('[data-panel-fields]');
    this.picker = root.querySelector('[data-element-picker]');
    this.options = options || {};
    this.element = null;
    this.fields = [];
    this.commandStack = modeler.get('commandStack');
    this.moddle = modeler.get('moddle');
    this.registry = modeler.get('elementRegistry');
    var stack = this.commandStack;
    stack.register(MULTI, {
      preExecute: function (steps) {
        steps.forEach(function (step) { stack.execute(step.cmd, step.context); });
      }
    });
    var panel = this;
    modeler.on('selection.changed', function (event) { panel.show(event.newSelection.length === 1 ? event.newSelection[0] : null); });
    modeler.on('elements.changed', function () { panel.refresh(); });
    modeler.on('import.done', function () { panel.fillPicker(); panel.show(null); });
    this.picker.addEventListener('change', function () {
      var element = panel.registry.get(panel.picker.value);
      if (element) {
        panel.options.reveal(element);
      }
    });
  }

  // The picker lists every element by name, so one can be selected without a mouse.
  Panel.prototype.fillPicker = function () {
    var picker = this.picker;
    var choices = this.registry.filter(function (element) {
      return element.type !== 'label' && !element.labelTarget && element.businessObject &&
        !is(element.businessObject, 'bpmn:Process') && !is(element.businessObject, 'bpmn:Collaboration') &&
        element.businessObject.id === element.id;
    }).map(function (element) {
      var bo = element.businessObject;
      return { id: element.id, text: (bo.name ? bo.name + ' (' + bo.id + ')' : bo.id) + ' · ' + bo.$type.replace('bpmn:', '') };
    }).sort(function (a, b) { return a.text.localeCompare(b.text); });
    picker.replaceChildren(new Option('Choose an element…', ''));
    choices.forEach(function (choice) { picker.add(new Option(choice.text, choice.id)); });
  };

  Panel.prototype.run = function (steps) {
    if (steps.length) {
      this.commandStack.execute(MULTI, steps);
    }
  };

  Panel.prototype.update = function (target, properties) {
    var element = this.element;
    if (target === element.businessObject) {
      return { cmd: 'element.updateProperties', context: { element: element, properties: properties } };
    }
    return { cmd: 'element.updateModdleProperties', context: { element: element, moddleElement: target, properties: properties } };
  };

  // Steps that add `child` to the element's extensionElements, creating the container if missing.
  Panel.prototype.attach = function (child) {
    var bo = this.element.businessObject;
    var container = bo.extensionElements;
    if (container) {
      child.$parent = container;
      return [this.update(container, { values: (container.values || []).concat(child) })];
    }
    container = this.moddle.create('bpmn:ExtensionElements', { values: [child] });
    container.$parent = bo;
    child.$parent = container;
    return [this.update(bo, { extensionElements: container })];
  };

  // Steps that remove `child` from the extensionElements, and the container when it is left empty.
  Panel.prototype.detach = function (child) {
    var bo = this.element.businessObject;
    var rest = without(bo.extensionElements.values, child);
    return [rest.length ? this.update(bo.extensionElements, { values: rest }) : this.update(bo, { extensionElements: undefined })];
  };

  Panel.prototype.propertyOf = function (name) {
    var found = null;
    extensions(this.element.businessObject, 'spiffworkflow:Properties').forEach(function (container) {
      (container.properties || []).forEach(function (property) {
        if (property.name === name && !found) {
          found = { container: container, property: property };
        }
      });
    });
    return found;
  };

  Panel.prototype.setProperty = function (name, value) {
    var found = this.propertyOf(name);
    if (!value) {
      if (!found) {
        return [];
      }
      var rest = without(found.container.properties, found.property);
      return rest.length ? [this.update(found.container, { properties: rest })] : this.detach(found.container);
    }
    if (found) {
      return [this.update(found.property, { value: value })];
    }
    var property = this.moddle.create('spiffworkflow:Property', { name: name, value: value });
    var container = extensions(this.element.businessObject, 'spiffworkflow:Properties')[0];
    if (container) {
      property.$parent = container;
      return [this.update(container, { properties: (container.properties || []).concat(property) })];
    }
    container = this.moddle.create('spiffworkflow:Properties', { properties: [property] });
    property.$parent = container;
    return this.attach(container);
  };

  Panel.prototype.setBodyExtension = function (type, value) {
    var existing = extensions(this.element.businessObject, type)[0];
    if (!value) {
      return existing ? this.detach(existing) : [];
    }
    if (existing) {
      return [this.update(existing, { value: value })];
    }
    return this.attach(this.moddle.create(type, { value: value }));
  };

  Panel.prototype.setExpression = function (owner, key, value) {
    var current = owner[key];
    if (!value) {
      return current ? [this.update(owner, this.pair(key, undefined))] : [];
    }
    if (current) {
      return [this.update(current, { body: value })];
    }
    var expression = this.moddle.create('bpmn:FormalExpression', { body: value });
    expression.$parent = owner;
    return [this.update(owner, this.pair(key, expression))];
  };

  Panel.prototype.pair = function (key, value) {
    var properties = {};
    properties[key] = value;
    return properties;
  };

  Panel.prototype.timerOf = function () {
    var definitions = this.element.businessObject.eventDefinitions || [];
    return definitions.filter(function (definition) { return is(definition, 'bpmn:TimerEventDefinition'); })[0] || null;
  };

  Panel.prototype.timerKind = function (timer) {
    var kind = TIMER_KINDS.filter(function (pair) { return timer[pair[0]]; })[0];
    return kind ? kind[0] : 'timeDuration';
  };

  Panel.prototype.setTimer = function (kind, text) {
    var timer = this.timerOf();
    var current = this.timerKind(timer);
    if (kind === current) {
      return this.setExpression(timer, kind, text);
    }
    var properties = {};
    TIMER_KINDS.forEach(function (pair) { properties[pair[0]] = undefined; });
    if (text) {
      properties[kind] = this.moddle.create('bpmn:FormalExpression', { body: text });
      properties[kind].$parent = timer;
    }
    return [this.update(timer, properties)];
  };

  Panel.prototype.timerText = function () {
    var timer = this.timerOf();
    var expression = timer[this.timerKind(timer)];
    return expression ? expression.body || '' : '';
  };

  Panel.prototype.bodyOf = function (type) {
    var found = extensions(this.element.businessObject, type)[0];
    return found ? found.value || '' : '';
  };

  Panel.prototype.laneOf = function (bo) {
    var lanes = this.registry.filter(function (element) {
      return is(element.businessObject, 'bpmn:Lane') && (element.businessObject.flowNodeRef || []).indexOf(bo) !== -1;
    });
    var lane = lanes[lanes.length - 1];  // nested lanes: the innermost is listed last
    return lane ? (lane.businessObject.name || lane.businessObject.id) : '';
  };

  // The fields for the element: each reads its value from the model and turns a new value into steps.
  Panel.prototype.fieldsFor = function (element) {
    var panel = this;
    var bo = element.businessObject;
    var fields = [
      { key: 'id', label: 'Id', readOnly: true, read: function () { return bo.id; } },
      { key: 'name', label: 'Name', read: function () { return bo.name || ''; },
        write: function (value) { return [panel.update(bo, { name: value || undefined })]; } }
    ];
    if (is(bo, 'bpmn:UserTask') || is(bo, 'bpmn:ManualTask')) {
      fields.push({ key: 'lane', label: 'Lane (who does it)', readOnly: true, read: function () { return panel.laneOf(bo); },
        hint: 'Move the task to another lane on the diagram to change who does it.' });
      DUE_RULE.concat(FORM).forEach(function (spec) {
        fields.push({ key: spec[0], label: spec[1], hint: spec[2], list: spec[0] === 'calendar' ? ['business', 'calendar'] : null,
          read: function () { var found = panel.propertyOf(spec[0]); return found ? found.property.value || '' : ''; },
          write: function (value) { return panel.setProperty(spec[0], value); } });
      });
      fields.push({ key: 'instructions', label: 'Instructions for the person doing it', multiline: true,
        read: function () { return panel.bodyOf('spiffworkflow:InstructionsForEndUser'); },
        write: function (value) { return panel.setBodyExtension('spiffworkflow:InstructionsForEndUser', value); } });
    }
    if (this.timerOf()) {
      fields.push({ key: 'timerKind', label: 'Timer type', choices: TIMER_KINDS,
        read: function () { return panel.timerKind(panel.timerOf()); },
        write: function (kind) { return panel.setTimer(kind, panel.timerText()); } });
      fields.push({ key: 'timerExpression', label: 'Timer expression', hint: PYTHON_HINT,
        read: function () { return panel.timerText(); },
        write: function (value) { return panel.setTimer(panel.timerKind(panel.timerOf()), value); } });
    }
    if (is(bo, 'bpmn:SequenceFlow') && is(bo.sourceRef, 'bpmn:Gateway')) {
      var gateway = this.registry.get(bo.sourceRef.id);
      fields.push({ key: 'condition', label: 'Condition', multiline: true,
        hint: 'A Python expression on the case data, e.g. decision == "approved". Leave empty on the default flow.',
        read: function () { return bo.conditionExpression ? bo.conditionExpression.body || '' : ''; },
        write: function (value) { return panel.setExpression(bo, 'conditionExpression', value); } });
      if (DEFAULT_FLOW_GATEWAYS.some(function (type) { return is(bo.sourceRef, type); })) {
        fields.push({ key: 'defaultFlow', label: 'Default flow of ' + (bo.sourceRef.name || bo.sourceRef.id), checkbox: true,
          hint: 'Taken when no other flow\'s condition holds.',
          read: function () { return bo.sourceRef.default === bo; },
          write: function (checked) {
            var current = bo.sourceRef.default;
            if (checked === (current === bo)) {
              return [];
            }
            var properties = { default: checked ? bo : undefined };
            return [{ cmd: 'element.updateProperties', context: { element: gateway, properties: properties } }];
          } });
      }
    }
    if (is(bo, 'bpmn:ScriptTask')) {
      fields.push({ key: 'script', label: 'Script', multiline: true, code: true,
        hint: 'Python, run in Casework\'s restricted environment: no imports; use the helpers scripts may call.',
        read: function () { return bo.script || ''; },
        write: function (value) { return [panel.update(bo, { script: value || undefined })]; } });
    }
    if (is(bo, 'bpmn:CallActivity')) {
      fields.push({ key: 'calledElement', label: 'Called process', list: this.options.processIds(),
        hint: 'The id of the process this step runs: one of this set or of the common library.',
        read: function () { return bo.calledElement || ''; },
        write: function (value) { return [panel.update(bo, { calledElement: value || undefined })]; } });
    }
    if (is(bo, 'bpmn:BusinessRuleTask')) {
      fields.push({ key: 'calledDecisionId', label: 'Decision', hint: 'The id of a decision table in one of the set\'s DMN files.',
        read: function () { return panel.bodyOf('spiffworkflow:CalledDecisionId'); },
        write: function (value) { return panel.setBodyExtension('spiffworkflow:CalledDecisionId', value); } });
    }
    return fields;
  };

  Panel.prototype.control = function (field) {
    var id = 'prop-' + field.key;
    var control;
    if (field.choices) {
      control = document.createElement('select');
      field.choices.forEach(function (pair) { control.add(new Option(pair[1], pair[0])); });
    } else if (field.multiline) {
      control = document.createElement('textarea');
      control.rows = field.code ? 8 : 4;
      control.spellcheck = !field.code;
    } else {
      control = document.createElement('input');
      control.type = field.checkbox ? 'checkbox' : 'text';
    }
    control.id = id;
    if (field.readOnly || this.options.readOnly) {
      control.readOnly = true;
      control.disabled = control.tagName === 'SELECT' || field.checkbox;  // neither honours readOnly
    }
    if (field.list && field.list.length) {
      var list = document.createElement('datalist');
      list.id = id + '-choices';
      field.list.forEach(function (value) { list.appendChild(new Option(value, value)); });
      control.setAttribute('list', list.id);
      this.fieldsBox.appendChild(list);
    }
    return control;
  };

  Panel.prototype.show = function (element) {
    var panel = this;
    this.element = element && element.labelTarget ? element.labelTarget : element;
    this.fields = [];
    this.fieldsBox.replaceChildren();
    this.picker.value = this.element && this.registry.get(this.element.id) ? this.element.id : '';
    if (!this.element || !this.element.businessObject || is(this.element.businessObject, 'bpmn:Process')) {
      var empty = document.createElement('p');
      empty.className = 'sub';
      empty.textContent = 'Select an element on the diagram, or choose one above, to see and edit its properties.';
      this.fieldsBox.appendChild(empty);
      return;
    }
    var target = this.element;
    this.fieldsFor(target).forEach(function (field) {
      var row = document.createElement('div');
      row.className = 'field' + (field.checkbox ? ' field-check' : '');
      var label = document.createElement('label');
      var control = panel.control(field);
      label.htmlFor = control.id;
      label.textContent = field.label;
      row.append.apply(row, field.checkbox ? [control, label] : [label, control]);
      if (field.hint) {
        var hint = document.createElement('p');
        hint.className = 'hint';
        hint.id = control.id + '-hint';
        hint.textContent = field.hint;
        control.setAttribute('aria-describedby', hint.id);
        row.appendChild(hint);
      }
      if (!field.readOnly && !panel.options.readOnly) {
        control.addEventListener('change', function () {
          if (panel.element !== target) {
            return;
          }
          var value = field.checkbox ? control.checked : control.value.trim() ? control.value : '';
          panel.run(field.write(value));
        });
      }
      panel.fields.push({ field: field, control: control });
      panel.fieldsBox.appendChild(row);
    });
    this.refresh();
  };

  // Values follow the model (an undo, a rename on the canvas); the field being typed in is left alone.
  Panel.prototype.refresh = function () {
    if (this.element && !this.registry.get(this.element.id)) {
      this.show(null);
      return;
    }
    this.fields.forEach(function (entry) {
      if (entry.control === document.activeElement && !entry.field.readOnly) {
        return;
      }
      var value = entry.field.read();
      if (entry.field.checkbox) {
        entry.control.checked = !!value;
      } else if (entry.control.value !== value) {
        entry.control.value = value;
      }
    });
  };

  window.CaseworkDesigner = window.CaseworkDesigner || {};
  window.CaseworkDesigner.Panel = Panel;
}());
