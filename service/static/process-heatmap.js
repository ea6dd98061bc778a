// Paints a process view's load on its diagram, as the painter "process-heat" of case-diagram.js (loaded before
// this file, which fetches the diagram and the counts). Each element where running cases wait gets a badge with
// how many, shaded by its load next to the busiest element, and a red badge where incidents are open; the element
// and its badges lead to the list of those cases.
(function () {
  'use strict';

  if (!window.CaseworkDiagrams) {
    return; // case-diagram.js did not load; the table under the diagram still holds every count
  }
  var LEVELS = 3;
  var badge = window.CaseworkDiagrams.badge;

  function plural(count, one, many) {
    return count + ' ' + (count === 1 ? one : many);
  }

  function describe(load) {
    var parts = [plural(load.cases, 'case waits', 'cases wait') + ' at ' + load.name];
    if (load.overdue_tasks) {
      parts.push(plural(load.overdue_tasks, 'overdue task', 'overdue tasks'));
    }
    if (load.open_incidents) {
      parts.push(plural(load.open_incidents, 'open incident', 'open incidents'));
    }
    return parts.join(', ') + '. Show these cases.';
  }

  function paintHeat(viewer, container, heat) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    var overlays = viewer.get('overlays');
    var loads = (heat && heat.elements) || [];
    var most = loads.reduce(function (top, load) { return Math.max(top, load.cases); }, 1);
    var byId = {};

    loads.forEach(function (load) {
      var id = load.element_id;
      if (!load.cases || !registry.get(id)) {
        return; // an element of another version or diagram: nothing to draw
      }
      var level = Math.max(1, Math.ceil(LEVELS * load.cases / most));
      var title = describe(load);
      byId[id] = load;
      canvas.addMarker(id, 'cw-heat-' + level);
      overlays.add(id, 'cw-heat', {
        position: { top: -14, left: -14 },
        scale: { min: 1 }, // a large diagram fits the viewer zoomed out: its counts must stay readable
        html: badge('cw-heat-count cw-heat-count-' + level, String(load.cases), title, load.url)
      });
      if (load.open_incidents) {
        canvas.addMarker(id, 'cw-heat-incident');
        overlays.add(id, 'cw-heat', {
          position: { top: -14, right: 14 },
          scale: { min: 1 },
          html: badge('cw-badge-error', '! ' + load.open_incidents, title, load.url)
        });
      }
    });

    viewer.on('element.click', function (event) {
      var shown = event.element.businessObject ? event.element.businessObject.id : event.element.id;
      if (byId[shown]) {
        window.location.assign(byId[shown].url);
      }
    });
    container.setAttribute('data-heat-elements', Object.keys(byId).join(' '));
  }

  window.CaseworkDiagrams.paint('process-heat', paintHeat);
}());
