// The designer's editor page: opens a diagram set's draft in bpmn-js's modeler (window.BpmnJS from the modeler
// bundle) and talks to the designer draft endpoints: save a file with the revision it was loaded at, validate, run
// the process tests, upload, discard and deploy. designer-panel.js edits the selected element; designer-results.js
// lists problems and test results and draws them on the diagram.
(function () {
  'use strict';

  var page = document.querySelector('[data-designer]');
  if (!page) {
    return;
  }
  var base = page.getAttribute('data-base');
  var canEdit = page.getAttribute('data-can-edit') === 'true';  // readers validate and test the stored draft
  var designer = window.CaseworkDesigner || {};
  var state = { draft: null, path: null, dirty: false, locked: null, busy: false };
  var ui = {
    info: page.querySelector('[data-draft-info]'),
    status: page.querySelector('[data-status]'),
    alert: page.querySelector('[data-alert]'),
    dirty: page.querySelector('[data-dirty]'),
    tabs: page.querySelector('[data-tabs]'),
    files: page.querySelector('[data-files]'),
    conflict: page.querySelector('[data-conflict]'),
    conflictText: page.querySelector('[data-conflict-text]'),
    conflictDownload: page.querySelector('[data-conflict-download]'),
    upload: page.querySelector('[data-upload-form]'),
    deploy: page.querySelector('[data-deploy-form]')
  };

  function say(message) {
    ui.status.textContent = message;
  }

  function fail(error) {
    var detail = error && error.message ? ' (' + error.message.split('\n')[0] + ')' : '';
    ui.alert.textContent = error && error.readable ? error.message : 'Something went wrong on this page' + detail + '. Reload the page.';
    say('');
  }

  var draftApi = designer.draft;
  var call = draftApi.call;
  var readable = draftApi.readable;
  var refusal = draftApi.refusal;

  function fileUrl(path) {
    return draftApi.fileUrl(base, path);
  }

  var modeler = new window.BpmnJS({
    container: page.querySelector('[data-canvas]'),
    moddleExtensions: { spiffworkflow: designer.spiffworkflowModdle }
  });

  // Centre the element at a readable size: zoomed out to fit a large diagram, a step is too small to read,
  // and at the edge the palette covers it.
  function reveal(element) {
    var canvas = modeler.get('canvas');
    canvas.scrollToElement(element);  // also opens the sub-process plane the element is drawn on
    var points = element.waypoints || [{ x: element.x, y: element.y }, { x: element.x + element.width, y: element.y + element.height }];
    var xs = points.map(function (point) { return point.x; });
    var ys = points.map(function (point) { return point.y; });
    var box = canvas.viewbox();
    var scale = Math.max(box.scale, 1);
    var width = box.width * box.scale / scale;
    var height = box.height * box.scale / scale;
    canvas.viewbox({
      x: (Math.min.apply(null, xs) + Math.max.apply(null, xs)) / 2 - width / 2,
      y: (Math.min.apply(null, ys) + Math.max.apply(null, ys)) / 2 - height / 2,
      width: width,
      height: height
    });
    modeler.get('selection').select(element);
  }

  new designer.Panel(modeler, page.querySelector('[data-panel]'), {
    reveal: reveal,
    readOnly: !canEdit,
    processIds: function () { return ((state.draft && state.draft.processes) || []).map(function (p) { return p.process_id; }); }
  });
  var fileList = new designer.FileList(ui.tabs, ui.files, {
    fileUrl: fileUrl,
    open: function (path) { openFile(path, null); }
  });
  var results = new designer.Results(modeler, page, {
    setName: page.getAttribute('data-set'),
    files: function () { return ((state.draft && state.draft.files) || []).map(function (file) { return file.path; }); },
    current: function () { return state.path; },
    open: function (path, elementId) { openFile(path, elementId); }
  });

  function setDirty(dirty) {
    state.dirty = canEdit && dirty;
    if (ui.dirty) {
      ui.dirty.hidden = !state.dirty;
    }
    updateButtons();
  }

  function updateButtons() {
    var stack = modeler.get('commandStack');
    var ready = !!state.draft && !state.busy;
    page.querySelectorAll('[data-action]').forEach(function (button) {
      var action = button.getAttribute('data-action');
      button.disabled = !ready || (action === 'save' && (!state.path || !!state.locked)) ||
        (action === 'undo' && !stack.canUndo()) || (action === 'redo' && !stack.canRedo());
    });
    if (ui.deploy) {
      ui.deploy.querySelector('button[type="submit"]').disabled = !ready;
    }
  }

  modeler.on('commandStack.changed', function (event) {
    if (event.trigger !== 'clear') {
      setDirty(true);
    }
    updateButtons();
  });

  window.addEventListener('beforeunload', function (event) {
    if (state.dirty) {
      event.preventDefault();
      event.returnValue = '';
    }
  });

  function busy(message, work) {
    if (state.busy) {
      return Promise.resolve();
    }
    state.busy = true;
    page.setAttribute('aria-busy', 'true');
    ui.alert.textContent = '';
    say(message);
    updateButtons();
    return Promise.resolve().then(work).catch(fail).then(function () {
      state.busy = false;
      page.removeAttribute('aria-busy');
      updateButtons();
    });
  }

  function describeDraft(draft) {
    var when = draft.updated_at ? new Date(draft.updated_at).toLocaleString() : null;
    if (draft.updated_by) {
      return 'Draft revision ' + draft.revision + ', last saved by ' + draft.updated_by + (when ? ' on ' + when : '') + '.';
    }
    var deployed = draft.based_on ? 'version ' + draft.based_on.version + ' of ' + draft.based_on.process_id + ' as deployed'
      : 'the files as shipped';
    return 'No draft yet: you are looking at ' + deployed + '. Your first save starts a draft the other designers share.';
  }

  function loadDraft() {
    return call('GET', base + '/draft.json').then(function (answer) {
      if (!answer.ok) {
        throw refusal(answer);
      }
      state.draft = answer.data;
      ui.info.textContent = describeDraft(state.draft);
      fileList.render(state.draft.files);
      fileList.mark(state.path);
      return state.draft;
    });
  }

  function openFile(path, elementId) {
    if (path !== state.path && state.dirty &&
        !window.confirm('Your changes to ' + state.path + ' are not saved. Leave them and open ' + path + '?')) {
      return Promise.resolve();
    }
    // The open file is only revealed, never imported again: that would drop unsaved edits and the selection.
    var shown = path === state.path ? Promise.resolve() : showFile(path);
    return shown.then(function () {
      var element = elementId && modeler.get('elementRegistry').get(elementId);
      if (element) {
        reveal(element);
      }
    }).catch(fail);
  }

  function showFile(path) {
    return call('GET', fileUrl(path), { text: true, accept: 'application/xml' }).then(function (xml) {
      return modeler.importXML(xml).then(function (imported) {
        state.path = path;
        setDirty(false);
        fileList.mark(path);
        modeler.get('canvas').zoom('fit-viewport', 'auto');
        // Content of a registered namespace that has no type is dropped on import: saving would lose it.
        var dropped = (imported.warnings || []).filter(function (warning) { return /unparsable content/.test(warning.message); });
        state.locked = dropped.length ? path + ' holds content this editor does not know (' +
          dropped.map(function (warning) { return warning.message.split('\n')[0].replace('unparsable content ', ''); }).join(', ') +
          '); saving it here would drop that content. Edit it in your modeler and upload it instead.' : null;
        ui.alert.textContent = state.locked || '';
        page.setAttribute('data-open-file', path);
        window.history.replaceState(null, '', '#file=' + encodeURIComponent(path));  // a reload reopens this file
        results.draw();
        updateButtons();
      });
    }).catch(function (error) {
      if (error.readable) {
        throw error;
      }
      throw readable(path + ' could not be opened in the editor: ' + String(error.message || error).split('\n')[0] + '.');
    });
  }

  function downloadable(xml) {
    var old = ui.conflictDownload.getAttribute('href');
    if (old && old.indexOf('blob:') === 0) {
      URL.revokeObjectURL(old);
    }
    ui.conflictDownload.href = URL.createObjectURL(new Blob([xml], { type: 'application/xml' }));
    ui.conflictDownload.setAttribute('download', state.path.split('/').pop());
  }

  function save() {
    if (state.locked) {
      return Promise.reject(readable(state.locked));
    }
    return modeler.saveXML({ format: true }).then(function (saved) {
      return call('PUT', fileUrl(state.path), {
        body: saved.xml,
        headers: { 'Content-Type': 'application/xml', 'X-Draft-Revision': String(state.draft.revision) }
      }).then(function (answer) {
        if (answer.status === 409) {
          downloadable(saved.xml);
          ui.conflictText.textContent = (answer.data.updated_by || 'Another designer') + ' saved the draft (now revision ' +
            answer.data.revision + ') after you opened it, so your save was refused. Reload the draft to see their changes; ' +
            'download your version first to keep your edits.';
          ui.conflict.hidden = false;
          throw readable(answer.data.error || 'The draft changed since you opened it; nothing was saved.');
        }
        if (!answer.ok) {
          throw answer.data.problems ? showRefusedProblems(answer) : refusal(answer);
        }
        state.draft.revision = answer.data.revision;
        setDirty(false);
        ui.conflict.hidden = true;
        results.showProblems(answer.data.problems || [], 'Saved.');
        return loadDraft();
      });
    });
  }

  function showRefusedProblems(answer) {
    results.showProblems(answer.data.problems, 'Refused:');
    return readable(answer.data.error || 'The server refused this; the problems are listed below.');
  }

  function saveIfChanged() {
    return state.dirty ? save() : Promise.resolve();
  }

  function post(path, body, headers) {
    return call('POST', base + path, { body: body, headers: headers });
  }

  var actions = {
    save: function () {
      return busy('Saving ' + state.path + '…', function () {
        return save().then(function () { say('Saved ' + state.path + ' as draft revision ' + state.draft.revision + '.'); });
      });
    },
    validate: function () {
      return busy('Validating the draft…', function () {
        return saveIfChanged().then(function () { return post('/draft/validate'); }).then(function (answer) {
          if (!answer.ok) {
            throw refusal(answer);
          }
          results.showProblems(answer.data.problems || []);
          say((answer.data.problems || []).length ? 'Validated the draft; its problems are listed below.'
            : 'Validated the draft: no problems found.');
        });
      });
    },
    tests: function () {
      return busy('Running the process tests…', function () {
        return saveIfChanged().then(function () { return post('/draft/tests'); }).then(function (answer) {
          if (!answer.ok) {
            throw refusal(answer);
          }
          results.showTests(answer.data);
          say(answer.data.passed ? 'The process tests passed.' : 'The process tests did not all pass; see the results below.');
        });
      });
    },
    undo: function () { modeler.get('commandStack').undo(); },
    redo: function () { modeler.get('commandStack').redo(); },
    discard: function () {
      var question = 'Discard the draft of ' + page.getAttribute('data-set') + ' for every designer? ' +
        'Everything saved since the last deployment is lost.';
      if (!window.confirm(question)) {
        return Promise.resolve();
      }
      return busy('Discarding the draft…', function () {
        return post('/draft/discard').then(function (answer) {
          if (!answer.ok) {
            throw refusal(answer);
          }
          setDirty(false);
          return reload(function () { return 'The draft was discarded; you are looking at the deployed files.'; });
        });
      });
    },
    reload: function () {
      if (state.dirty && !window.confirm('Your unsaved changes to ' + state.path + ' will be lost. Reload the draft?')) {
        return Promise.resolve();
      }
      return busy('Reloading the draft…', function () {
        ui.conflict.hidden = true;
        return reload(function () { return 'Reloaded the draft, revision ' + state.draft.revision + '.'; });
      });
    }
  };

  function reload(done) {
    var path = state.path;
    return loadDraft().then(function (draft) {
      var paths = draft.files.map(function (file) { return file.path; });
      var open = paths.indexOf(path) !== -1 ? path : firstDiagram(draft);
      return open ? showFile(open) : null;
    }).then(function () { say(done()); });
  }

  function firstDiagram(draft) {
    var wanted = decodeURIComponent((window.location.hash.match(/file=([^&]+)/) || [])[1] || '');
    var diagrams = draft.files.filter(function (file) { return file.kind === 'bpmn'; }).map(function (file) { return file.path; });
    return diagrams.indexOf(wanted) !== -1 ? wanted : diagrams[0] || null;
  }

  page.querySelectorAll('[data-action]').forEach(function (button) {
    button.addEventListener('click', function () { actions[button.getAttribute('data-action')](); });
  });

  if (ui.upload) {
    ui.upload.addEventListener('submit', function (event) {
      event.preventDefault();
      var question = 'Your changes to ' + state.path + ' are not saved and the upload reloads the draft. Upload anyway?';
      if (state.dirty && !window.confirm(question)) {
        return;
      }
      busy('Uploading…', function () {
        return post('/draft/upload', new FormData(ui.upload)).then(function (answer) {
          if (!answer.ok) {
            throw answer.data.problems ? showRefusedProblems(answer) : refusal(answer);
          }
          ui.upload.reset();
          setDirty(false);
          results.showProblems(answer.data.problems || [], 'Uploaded ' + (answer.data.files || []).join(', ') + '.');
          return reload(function () { return 'Uploaded; the draft is now at revision ' + state.draft.revision + '.'; });
        });
      });
    });
  }

  if (ui.deploy) {
    ui.deploy.addEventListener('submit', function (event) {
      event.preventDefault();
      var note = ui.deploy.querySelector('textarea[name="note"]').value.trim();
      if (!note) {
        fail(readable('Say what changed and why before deploying.'));
        return;
      }
      busy('Deploying…', function () {
        return saveIfChanged().then(function () {
          return post('/draft/deploy', JSON.stringify({ note: note }), { 'Content-Type': 'application/json' });
        }).then(function (answer) {
          if (answer.status === 422 && answer.data.problems) {
            throw showRefusedProblems(answer);
          }
          if (!answer.ok) {
            throw refusal(answer);
          }
          setDirty(false);
          window.location.assign(answer.data.redirect || page.getAttribute('data-index'));
        });
      });
    });
  }

  busy('Loading the draft…', function () {
    return loadDraft().then(function (draft) {
      var path = firstDiagram(draft);
      if (!path) {
        throw readable('This set has no BPMN diagram yet: upload one below.');
      }
      return showFile(path);
    }).then(function () { say(''); });
  });
}());
