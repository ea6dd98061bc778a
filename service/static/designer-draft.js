// How the designer page reaches a draft: requests to the draft endpoints (CSRF token, JSON errors, an ended
// session) and the list of the draft's files (a tab per diagram, a download link per file). designer-modeler.js
// uses both.
(function () {
  'use strict';

  var KINDS = { bpmn: 'Diagram', dmn: 'Decision table', form: 'Form', test: 'Process test' };

  function readable(message) {
    var error = new Error(message);
    error.readable = true;
    return error;
  }

  function refusal(answer) {
    var data = answer.data || {};
    return readable(data.error || data.message || 'The server refused this (' + answer.status + ').');
  }

  // One request: answers {status, ok, data} for JSON, the body for options.text, a readable error otherwise.
  function call(method, url, options) {
    options = options || {};
    var headers = Object.assign({ Accept: options.accept || 'application/json' }, options.headers || {});
    if (method !== 'GET') {
      headers['X-CSRFToken'] = document.querySelector('meta[name="csrf-token"]').content;
    }
    return fetch(url, { method: method, credentials: 'same-origin', headers: headers, body: options.body })
      .catch(function () { throw readable('The server did not answer. Check the connection, then try again; your changes are still on this page.'); })
      .then(function (response) {
        if (response.redirected && /\/signin/.test(response.url)) {
          throw readable('Your session has ended. Sign in again in another tab, then try again; your changes are still on this page.');
        }
        if (options.text && response.ok) {
          return response.text();
        }
        return response.text().then(function (text) {
          var data;
          try {
            data = text ? JSON.parse(text) : {};
          } catch (ignored) {
            throw readable('The server answered ' + response.status + ' without saying why. Reload the page and try again.');
          }
          if (options.text) {
            throw refusal({ status: response.status, data: data });
          }
          return { status: response.status, ok: response.ok, data: data };
        });
      });
  }

  function fileUrl(base, path) {
    return base + '/draft/files/' + path.split('/').map(encodeURIComponent).join('/');
  }

  // The draft's files: a tab for each diagram (options.open(path) opens it) and a row with a download link for each.
  function FileList(tabs, rows, options) {
    this.tabs = tabs;
    this.rows = rows;
    this.options = options;
    tabs.addEventListener('keydown', function (event) {
      var all = Array.prototype.slice.call(tabs.querySelectorAll('[role="tab"]'));
      var at = all.indexOf(document.activeElement);
      var step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (at !== -1 && step) {
        event.preventDefault();
        all[(at + step + all.length) % all.length].focus();
      }
    });
  }

  FileList.prototype.render = function (files) {
    var list = this;
    this.tabs.replaceChildren();
    this.rows.replaceChildren();
    files.forEach(function (file) {
      if (file.kind === 'bpmn') {
        var tab = document.createElement('button');
        tab.type = 'button';
        tab.setAttribute('role', 'tab');
        tab.setAttribute('aria-controls', 'designer-canvas');
        tab.setAttribute('data-path', file.path);
        tab.textContent = file.path;
        tab.addEventListener('click', function () { list.options.open(file.path); });
        list.tabs.appendChild(tab);
      }
      var link = document.createElement('a');
      link.href = list.options.fileUrl(file.path);
      link.setAttribute('download', file.path.split('/').pop());
      link.setAttribute('aria-label', 'Download ' + file.path);
      link.textContent = 'Download';
      var row = document.createElement('tr');
      [file.path, KINDS[file.kind] || 'Other', file.size + ' bytes', link].forEach(function (content, index) {
        var cell = document.createElement('td');
        cell.className = index === 2 ? 'num' : '';
        cell.append(content);
        row.appendChild(cell);
      });
      list.rows.appendChild(row);
    });
  };

  FileList.prototype.mark = function (path) {
    this.tabs.querySelectorAll('[role="tab"]').forEach(function (tab) {
      var selected = tab.getAttribute('data-path') === path;
      tab.setAttribute('aria-selected', selected ? 'true' : 'false');
      tab.tabIndex = selected ? 0 : -1;
    });
  };

  window.CaseworkDesigner = window.CaseworkDesigner || {};
  window.CaseworkDesigner.draft = { call: call, readable: readable, refusal: refusal, fileUrl: fileUrl };
  window.CaseworkDesigner.FileList = FileList;
}());
