// The spiffworkflow extensions bpmn-js must know by type so the designer's panel can edit them and an export keeps
// them. Once a namespace is registered, moddle drops any of its elements it has no type for, so this lists every
// extension the bundled diagrams use and those SpiffArena writes (service task operators, script unit tests).
(function () {
  'use strict';

  function body(name) {
    return { name: name, superClass: ['Element'], properties: [{ name: 'value', type: 'String', isBody: true }] };
  }

  function attributes(name, names) {
    return {
      name: name,
      superClass: ['Element'],
      properties: names.map(function (attr) { return { name: attr, type: 'String', isAttr: true }; })
    };
  }

  var parameter = attributes('Parameter', ['id', 'name', 'type', 'value']);
  var property = attributes('Property', ['name', 'value']);
  var operator = attributes('ServiceTaskOperator', ['id', 'resultVariable']);
  operator.properties.push({ name: 'parameterList', type: 'Parameters' });
  var unitTest = attributes('UnitTest', ['id']);
  unitTest.properties.push({ name: 'inputJson', type: 'InputJson' }, { name: 'expectedOutputJson', type: 'ExpectedOutputJson' });

  var descriptor = {
    name: 'SpiffWorkflow',
    uri: 'http://spiffworkflow.org/bpmn/schema/1.0/core',
    prefix: 'spiffworkflow',
    xml: { tagAlias: 'lowerCase' },
    associations: [],
    types: [
      { name: 'Properties', superClass: ['Element'], properties: [{ name: 'properties', type: 'Property', isMany: true }] },
      property,
      body('PreScript'),
      body('PostScript'),
      body('CalledDecisionId'),
      body('InstructionsForEndUser'),
      body('MessagePayload'),
      body('MessageVariable'),
      body('PayloadExpression'),
      body('VariableName'),
      body('SignalButtonLabel'),
      body('AllowGuest'),
      body('GuestConfirmation'),
      operator,
      { name: 'Parameters', superClass: ['Element'], properties: [{ name: 'parameters', type: 'Parameter', isMany: true }] },
      parameter,
      { name: 'UnitTests', superClass: ['Element'], properties: [{ name: 'unitTests', type: 'UnitTest', isMany: true }] },
      unitTest,
      body('InputJson'),
      body('ExpectedOutputJson'),
      {
        name: 'ScriptsOnInstances',
        extends: ['bpmn:MultiInstanceLoopCharacteristics'],
        properties: [{ name: 'scriptsOnInstances', type: 'Boolean', isAttr: true }]
      }
    ]
  };

  window.CaseworkDesigner = window.CaseworkDesigner || {};
  window.CaseworkDesigner.spiffworkflowModdle = descriptor;
}());
