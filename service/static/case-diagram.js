// Draws each [data-bpmn-diagram] with bpmn-js's navigated viewer (window.BpmnJS, loaded before this file)
// and paints on it the JSON at its data-marks-url: by default a case's progress (completed, active with token
// counts, errored and waiting elements). Another page registers its own painter before the page has loaded,
// window.CaseworkDiagrams.paint(name, function (viewer, container, json) {...}), and names it in data-painter.
(function () {
  'use strict';

  var MARKS = ['completed', 'active', 'errored', 'waiting'];
  var painters = { 'case-progress': applyMarks };

  function problem(message) {
    var error = new Error(message);
    error.readable = true;
    return error;
  }

  function fetchText(url, what, accept) {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: accept } })
      .catch(function () {
        throw problem('The ' + what + ' could not be fetched: the server did not answer. Check the connection and reload the page.');
      })
      .then(function (response) {
        if (response.redirected && /\/signin/.test(response.url)) {
          throw problem('Your session has ended. Sign in again to see the ' + what + '.');
        }
        if (!response.ok) {
          throw problem('The ' + what + ' could not be fetched: the server answered ' + response.status + '.');
        }
        return response.text();
      });
  }

  function fetchMarks(url, what) {
    if (!url) {
      return Promise.resolve({});
    }
    return fetchText(url, what, 'application/json').then(function (text) {
      try {
        return JSON.parse(text);
      } catch (ignored) {
        throw problem('The ' + what + ' could not be read: the server did not send JSON.');
      }
    });
  }

  // The contract: completed and waiting are lists of ids; active maps id to token count; errored maps id to message.
  function normalise(marks) {
    marks = marks || {};
    var asList = function (value) { return Array.isArray(value) ? value : Object.keys(value || {}); };
    var asMap = function (value, fallback) {
      if (!Array.isArray(value)) {
        return value || {};
      }
      var map = {};
      value.forEach(function (id) { map[id] = fallback; });
      return map;
    };
    return {
      completed: asList(marks.completed),
      active: asMap(marks.active, 1),
      errored: asMap(marks.errored, ''),
      waiting: asList(marks.waiting)
    };
  }

  // A count or flag drawn on an element; with a URL it is a link (keyboard users reach it too).
  function badge(className, text, title, url) {
    var element = document.createElement(url ? 'a' : 'span');
    element.className = 'cw-badge ' + className;
    if (url) {
      element.href = url;
    }
    element.textContent = text;
    element.title = title;
    element.setAttribute('aria-label', title);
    return element;
  }

  function applyMarks(viewer, container, json) {
    var marks = normalise(json);
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    var overlays = viewer.get('overlays');
    var marked = { completed: [], active: [], errored: [], waiting: [] };

    function mark(kind, id) {
      if (!registry.get(id)) {
        return false; // an element of another version of the diagram: nothing to draw
      }
      canvas.addMarker(id, 'cw-' + kind);
      marked[kind].push(id);
      return true;
    }

    marks.completed.forEach(function (id) { mark('completed', id); });
    marks.waiting.forEach(function (id) { mark('waiting', id); });
    Object.keys(marks.active).forEach(function (id) {
      var tokens = Number(marks.active[id]) || 1;
      if (mark('active', id) && tokens > 1) {
        overlays.add(id, 'cw-tokens', {
          position: { bottom: 10, right: 10 },
          html: badge('cw-badge-tokens', String(tokens), tokens + ' tokens are here')
        });
      }
    });
    Object.keys(marks.errored).forEach(function (id) {
      if (mark('errored', id)) {
        overlays.add(id, 'cw-incident', {
          position: { top: -10, right: 10 },
          html: badge('cw-badge-error', '!', String(marks.errored[id] || 'This step failed.'))
        });
      }
    });
    MARKS.forEach(function (kind) {
      container.setAttribute('data-marked-' + kind, marked[kind].join(' '));
    });
  }

  function showError(container, viewer, error) {
    if (viewer) {
      viewer.destroy();
    }
    var message = document.createElement('p');
    message.className = 'cw-diagram-error';
    message.setAttribute('role', 'alert');
    message.textContent = error && error.readable
      ? error.message
      : 'The diagram could not be shown: its BPMN file could not be read' +
        (error && error.message ? ' (' + error.message.split('\n')[0] + ').' : '.');
    container.replaceChildren(message);
    container.setAttribute('data-diagram-state', 'error');
  }

  function showDiagram(container) {
    var viewer = null;
    container.setAttribute('data-diagram-state', 'loading');
    if (typeof window.BpmnJS !== 'function') {
      showError(container, null, problem('The diagram viewer did not load. Reload the page; if it persists, tell an administrator.'));
      return Promise.resolve();
    }
    var paint = painters[container.getAttribute('data-painter') || 'case-progress'];
    if (typeof paint !== 'function') {
      showError(container, null, problem('The diagram cannot be marked: its script did not load. Reload the page.'));
      return Promise.resolve();
    }
    return Promise.all([
      fetchText(container.getAttribute('data-diagram-url'), 'diagram', 'application/xml, text/xml'),
      fetchMarks(container.getAttribute('data-marks-url'), container.getAttribute('data-marks-name') || 'case progress')
    ]).then(function (loaded) {
      viewer = new window.BpmnJS({ container: container });
      return viewer.importXML(loaded[0]).then(function () {
        var canvas = viewer.get('canvas');
        canvas.zoom('fit-viewport', 'auto');
        paint(viewer, container, loaded[1]);
        if (typeof ResizeObserver === 'function') {
          // The container can be resized by hand; the canvas must learn its new size.
          new ResizeObserver(function () { canvas.resized(); }).observe(container);
        }
        container.setAttribute('data-diagram-state', 'ready');
      });
    }).catch(function (error) {
      showError(container, viewer, error);
    });
  }

  window.CaseworkDiagrams = {
    paint: function (name, painter) { painters[name] = painter; },
    badge: badge
  };

  function showAll() {
    document.querySelectorAll('[data-bpmn-diagram]').forEach(showDiagram);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', showAll);
  } else {
    showAll();
  }
}());
