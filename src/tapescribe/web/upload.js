// The Upload tab: files dropped or picked are sent to POST /transcribe-file with upload progress,
// then followed over the session's event stream while the server transcribes them.
//
// The server is the record: after a reload the cards of sessions still being transcribed come back
// from GET /sessions. Bytes still in transit when the page goes away cannot survive, so the page
// warns before unloading and, after a reload, says which files have to be chosen again.

import { cancelSession, listSessions, retranscribe, uploadFile } from './api.js';
import { h, icon, replace, $ } from './dom.js';
import { follow, rewatch } from './events.js';
import { emit, SESSIONS_CHANGED } from './bus.js';
import { formatBytes, formatDuration, formatPercent, isUnfinished } from './format.js';
import { transcriptView } from './transcript.js';
import { appendChoice, modelChoice } from './choice.js';
import { showLanguageWarning } from './session_model.js';

const MAX_TRANSFERS = 2; // the rest of the browser's six connections stay free for the event streams
const IN_TRANSIT_KEY = 'tapescribe.uploads-in-transit';

export function setupUpload() {
  const panel = $('#panel-upload');
  const dropzone = $('#dropzone');
  const input = $('#upload-input');
  const list = $('#upload-list');
  const waiting = [];
  const inTransit = new Set();
  let active = 0;
  const choice = modelChoice({ label: 'Transcribe new files with', speakers: true });
  $('#upload-choice').append(choice.el);

  $('#upload-pick').addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    addFiles(input.files);
    input.value = '';
  });

  // The whole panel takes drops, so a near miss never makes the browser navigate to the file.
  let dragDepth = 0;
  panel.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    dropzone.classList.add('is-dragging');
  });
  panel.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  panel.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) dropzone.classList.remove('is-dragging');
  });
  panel.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    dropzone.classList.remove('is-dragging');
    addFiles(event.dataTransfer.files);
  });

  window.addEventListener('beforeunload', (event) => {
    if (!inTransit.size) return;
    event.preventDefault();
    event.returnValue = ''; // older browsers need it to show the "leave page?" question
  });

  function addFiles(files) {
    for (const file of files) {
      const card = uploadCard({ name: file.name, size: file.size });
      card.file = file;
      card.choice = choice.value(); // as chosen when the file was added, whatever is chosen later
      list.prepend(card.el);
      waiting.push(card);
    }
    pump();
  }

  function pump() {
    while (active < MAX_TRANSFERS && waiting.length) transfer(waiting.shift());
  }

  async function transfer(card) {
    active += 1;
    inTransit.add(card);
    saveInTransit();
    card.uploading(0);
    const form = appendChoice(new FormData(), card.choice);
    form.append('file', card.file, card.file.name);
    card.transfer = uploadFile('/transcribe-file', form, { onProgress: (fraction) => card.uploading(fraction) });
    try {
      const answer = await card.transfer.done;
      card.follow(answer.session_id, { status: 'queued', progress: 0 }, answer.duration);
      emit(SESSIONS_CHANGED, { id: answer.session_id });
    } catch (error) {
      if (error.code === 'aborted') card.remove();
      else {
        card.failed(error.message, error.details?.session_id);
        if (error.details?.session_id) emit(SESSIONS_CHANGED, { id: error.details.session_id });
      }
    } finally {
      card.transfer = null;
      card.file = null;
      active -= 1;
      inTransit.delete(card);
      saveInTransit();
      pump();
    }
  }

  function saveInTransit() {
    const files = [...inTransit].map((card) => card.name);
    if (files.length) sessionStorage.setItem(IN_TRANSIT_KEY, JSON.stringify(files));
    else sessionStorage.removeItem(IN_TRANSIT_KEY);
  }

  function uploadCard({ name, size }) {
    const badge = h('span', { class: 'badge badge-queued' }, 'Waiting');
    const progressLabel = h('span', { class: 'progress-label' }, 'Waiting to upload');
    const progress = h('progress', { max: 1, value: 0, 'aria-label': `Progress of ${name}` });
    const details = h('p', { class: 'muted small upload-details' }, formatBytes(size));
    const messageBox = h('div', { class: 'upload-message' });
    // as History shows it: an English-only model that heard another language probably wrote nonsense
    const warningBox = h('div', { class: 'language-warning' });
    const transcript = transcriptView({ label: `Transcript of ${name}` });
    const transcriptBox = h('div', { class: 'scroll-box upload-transcript', hidden: true }, transcript.el);
    const actions = h('div', { class: 'card-actions' });
    const el = h('li', { class: 'card upload-card', dataset: { state: 'waiting' } },
      h('div', { class: 'upload-head' },
        icon('file', 'file-icon'),
        h('div', { class: 'upload-name' }, h('p', { class: 'file-name' }, name), details),
        badge),
      h('div', { class: 'progress-block' }, progressLabel, progress),
      messageBox,
      warningBox,
      transcriptBox,
      actions);

    const card = { el, name, file: null, transfer: null, sessionId: null, stopFollowing: null };

    function state(value, badgeText, badgeKind) {
      el.dataset.state = value;
      badge.className = `badge badge-${badgeKind}`;
      badge.textContent = badgeText;
    }

    function setActions(...buttons) {
      replace(actions, buttons);
    }

    const openLink = () => h('a', { class: 'button small', href: `#history/${card.sessionId}` }, 'Open in History');
    const dismiss = () => h('button', { type: 'button', class: 'button small ghost', onclick: () => card.remove() },
      icon('x'), 'Dismiss');

    card.uploading = (fraction) => {
      state('uploading', `Uploading ${formatPercent(fraction)}`, 'processing');
      progressLabel.textContent = fraction >= 1 ? 'Uploaded; the server is checking the file…' : `Uploading… ${formatPercent(fraction)}`;
      progress.value = fraction;
      if (!actions.firstChild) {
        setActions(h('button', { type: 'button', class: 'button small', onclick: () => card.transfer?.abort() },
          icon('x'), 'Cancel upload'));
      }
    };

    card.follow = (sessionId, status, duration) => {
      card.sessionId = sessionId;
      el.dataset.sessionId = sessionId;
      if (duration) details.textContent = `${formatBytes(size)} · ${formatDuration(duration)}`;
      card.showStatus(status);
      card.stopFollowing = follow(sessionId, {
        status: (value) => card.showStatus(value),
        segments: (segments, from) => {
          transcript.update(segments, from);
          transcriptBox.hidden = !segments.length;
          transcriptBox.scrollTop = transcriptBox.scrollHeight;
        },
        end: (value) => {
          if (value) card.showStatus(value);
          emit(SESSIONS_CHANGED, { id: sessionId });
        },
        deleted: () => card.failed('This session was deleted.', null),
      }, { status, duration });
    };

    card.showStatus = (status) => {
      const fraction = status.progress || 0;
      switch (status.status) {
        case 'queued':
          state('queued', 'Queued', 'queued');
          progressLabel.textContent = 'Uploaded · waiting for the transcriber';
          progress.removeAttribute('value'); // indeterminate: no fraction to show yet
          break;
        case 'processing':
          state('processing', `Transcribing ${formatPercent(fraction)}`, 'processing');
          progressLabel.textContent = `Transcribing… ${formatPercent(fraction)}`;
          progress.value = fraction;
          break;
        case 'done':
          state('done', 'Done', 'done');
          progressLabel.textContent = transcript.length ? 'Transcribed' : 'Transcribed · no speech was found';
          progress.value = 1;
          setActions(openLink(), dismiss());
          if (!card.warningAsked) {
            card.warningAsked = true;
            showLanguageWarning(warningBox, card.sessionId, fixLanguage).then((session) => {
              // the transcript as stored: a run again that wrote as many segments sent none anew
              const segments = session?.transcription?.segments;
              if (segments?.length) {
                transcript.set(segments);
                transcriptBox.hidden = false;
              }
            });
          }
          return;
        case 'error':
          card.failed(status.message || 'Transcription failed.', card.sessionId);
          return;
        case 'cancelled':
          state('cancelled', 'Cancelled', 'cancelled');
          progressLabel.textContent = 'Cancelled · the transcript so far is kept';
          setActions(openLink(), dismiss());
          return;
        default:
          return;
      }
      if (el.dataset.actions !== 'running') {
        el.dataset.actions = 'running';
        setActions(h('button', { type: 'button', class: 'button small', onclick: cancel }, icon('stop'), 'Cancel'),
          openLink());
      }
    };

    /** The warning's one click: transcribe it again with the suggested model and language, followed here. */
    async function fixLanguage(suggestion, button) {
      button.disabled = true;
      replace(messageBox);
      try {
        await retranscribe(card.sessionId, suggestion);
      } catch (error) {
        button.disabled = false;
        replace(messageBox, h('p', { class: 'field-error', role: 'alert' }, error.message));
        return;
      }
      replace(warningBox);
      card.warningAsked = false;
      el.dataset.actions = '';
      card.showStatus({ status: 'queued', progress: 0 });
      rewatch(card.sessionId);
      emit(SESSIONS_CHANGED, { id: card.sessionId });
    }

    async function cancel(event) {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        await cancelSession(card.sessionId);
      } catch (error) {
        button.disabled = false;
        replace(messageBox, h('p', { class: 'field-error', role: 'alert' }, error.message));
      }
    }

    card.failed = (message, sessionId) => {
      card.sessionId = sessionId || card.sessionId;
      if (card.sessionId) el.dataset.sessionId = card.sessionId;
      state('error', 'Error', 'error');
      el.querySelector('.progress-block').hidden = true;
      replace(messageBox, h('p', { class: 'notice notice-error', role: 'alert' }, message,
        card.sessionId ? ' The file is kept in History, where you can retry or delete it.' : ''));
      setActions(card.sessionId ? openLink() : null, dismiss());
    };

    card.remove = () => {
      card.stopFollowing?.();
      const index = waiting.indexOf(card);
      if (index >= 0) waiting.splice(index, 1);
      el.remove();
    };

    setActions(h('button', { type: 'button', class: 'button small', onclick: () => card.remove() }, icon('x'), 'Remove'));
    return card;
  }

  // -- after a reload ---------------------------------------------------------------------------

  function interruptedNotice() {
    let names;
    try {
      names = JSON.parse(sessionStorage.getItem(IN_TRANSIT_KEY) || '[]');
    } catch {
      names = [];
    }
    sessionStorage.removeItem(IN_TRANSIT_KEY);
    if (!names.length) return;
    const notice = h('li', { class: 'card notice notice-warning upload-interrupted' },
      h('p', {}, h('strong', {}, 'Not uploaded: '),
        `${names.join(', ')} ${names.length === 1 ? 'was' : 'were'} still being sent when the page was reloaded, so the server never received ${names.length === 1 ? 'it' : 'them'}. Choose ${names.length === 1 ? 'it' : 'them'} again to upload.`),
      h('button', { type: 'button', class: 'button small ghost', onclick: () => notice.remove() }, icon('x'), 'Dismiss'));
    list.prepend(notice);
  }

  async function resumeRunning() {
    let page;
    try {
      page = await listSessions(100);
    } catch {
      return; // History shows the error; the Upload tab still works for new files
    }
    for (const session of page.sessions.reverse()) {
      if (session.source !== 'upload' || !isUnfinished(session.status)) continue;
      if (list.querySelector(`[data-session-id="${session.id}"]`)) continue;
      const card = uploadCard({ name: session.filename || session.title, size: session.size_bytes });
      list.prepend(card.el);
      card.follow(session.id, { status: session.status, progress: session.progress }, session.duration);
    }
  }

  interruptedNotice();
  resumeRunning();
}

function hasFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes('Files');
}
