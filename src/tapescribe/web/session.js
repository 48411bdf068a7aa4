// One session, opened from History: the player beside its transcript, rename, downloads, delete,
// for unfinished or failed jobs their progress, cancel and retry; the model and language with
// retranscription (session_model.js), segments corrected in place (segment_edit.js) and the
// earlier versions of the transcript (versions.js).

import {
  cancelSession, deleteSession, editSegment, getSession, renameSession, retrySession, urls,
} from './api.js';
import { confirmAction } from './confirm.js';
import { h, icon, replace } from './dom.js';
import { follow, rewatch } from './events.js';
import { emit, SESSIONS_CHANGED } from './bus.js';
import {
  exactBytes, formatBytes, formatDate, formatDuration, isUnfinished, sourceLabel,
} from './format.js';
import { notify } from './notify.js';
import { linkPlayer } from './player.js';
import { shareView } from './share.js';
import { speakersView } from './speakers.js';
import { transcriptView } from './transcript.js';
import { editInPlace } from './segment_edit.js';
import { modelPanel } from './session_model.js';
import { statusNotice } from './status_notice.js';
import { versionsView } from './versions.js';
import { tagEditor } from './library.js';

const EXPORTS = [['txt', 'Text'], ['srt', 'SRT'], ['vtt', 'WebVTT'], ['json', 'JSON']];

export function createSessionView(container, { onClose }) {
  const emptyState = container.firstElementChild;
  let current = null; // {id, session, parts, stopFollowing}
  let generation = 0;

  function close() {
    generation += 1;
    teardown();
    replace(container, emptyState);
  }

  function teardown() {
    if (!current) return;
    current.stopFollowing?.();
    current.parts?.audio?.pause();
    current = null;
  }

  async function open(id, { seekTo = null, focus = false } = {}) {
    if (current?.id === id) {
      if (seekTo && current.parts) seek(seekTo);
      else if (seekTo) current.pendingSeek = seekTo;
      return;
    }
    teardown();
    const mine = ++generation;
    current = { id };
    replace(container, h('div', { class: 'card session loading', 'aria-busy': 'true' },
      h('p', { class: 'muted' }, 'Loading session…')));
    let session;
    try {
      session = await getSession(id);
    } catch (error) {
      if (mine !== generation) return;
      const gone = error.status === 404;
      replace(container, h('div', { class: 'card session' },
        backButton(),
        h('div', { class: 'notice notice-error', role: 'alert' },
          h('p', {}, gone ? 'This session does not exist (any more). It may have been deleted.' : error.message),
          gone ? null : h('button', { type: 'button', class: 'button small', onclick: () => reopen(id) }, 'Try again'))));
      return;
    }
    if (mine !== generation) return;
    seekTo = seekTo || current.pendingSeek;
    current = { id, session };
    render(session);
    if (seekTo) seek(seekTo);
    else if (focus) current.parts.heading.focus({ preventScroll: false });
    if (isUnfinished(session.status.status)) startFollowing();
  }

  function reopen(id) {
    teardown();
    open(id, { focus: true });
  }

  function backButton() {
    return h('button', { type: 'button', class: 'button ghost back', onclick: onClose }, icon('back'), 'All sessions');
  }

  // -- rendering --------------------------------------------------------------------------------

  function render(session) {
    const parts = {};
    parts.heading = h('h2', { class: 'session-title', tabindex: '-1' }, session.title || 'Untitled');
    parts.renameButton = h('button', { type: 'button', class: 'button ghost small', onclick: startRename },
      icon('edit'), 'Rename');
    parts.titleRow = h('div', { class: 'title-row' }, parts.heading, parts.renameButton);
    parts.meta = h('p', { class: 'session-meta' });
    parts.status = h('div', { class: 'status-box' });
    parts.speakers = speakersView(session.id, {
      // the names show at once (from the answer), then the session is read again: the version the
      // rename kept, and anything else that changed
      onNamed: (named) => {
        current.session = { ...current.session, ...named };
        renderTranscript(current.session.transcription?.segments || [], 0, current.session.status.status, true);
        refreshDetails();
      },
      onStarted: followAgain,
      onChanged: refreshDetails,
    });
    parts.transcript = transcriptView({
      label: 'Transcript',
      decorate: (segment, item) => parts.speakers.decorate(segment, item),
      onSelect: (segment, index) => {
        parts.transcript.mark(index);
        parts.player?.play(segment.start);
      },
      onEdit: (segment, index, li) => editInPlace(li, segment, {
        save: (text) => saveSegment(index, text),
        done: () => parts.transcript.editButton(index)?.focus(),
      }),
    });
    parts.model = modelPanel({ onStarted: followAgain });
    parts.versions = versionsView(session.id, { onRestored: () => reopen(session.id) });
    parts.tags = tagEditor(session.id, session.tags, { onChange: () => emit(SESSIONS_CHANGED, { id: session.id }) });
    parts.transcriptBox = h('div', { class: 'scroll-box transcript-box' });
    parts.media = h('div', { class: 'media' });

    if (session.has_audio || session.chunks) {
      parts.audio = h('audio', { controls: true, preload: 'metadata', src: urls.audio(session.id) });
      parts.audio.setAttribute('aria-label', `Audio of ${session.title || 'this session'}`);
      parts.audio.addEventListener('error', () => {
        parts.media.append(h('p', { class: 'muted small' },
          'This browser cannot play this audio; download it to listen.'));
      }, { once: true });
      parts.player = linkPlayer(parts.audio, parts.transcript);
      parts.media.append(parts.audio);
    } else {
      parts.media.append(h('p', { class: 'muted small' }, 'No audio is stored for this session.'));
    }

    const downloads = h('div', { class: 'downloads' },
      session.has_audio || session.chunks
        ? h('a', { class: 'button small', href: urls.audio(session.id, true), download: '' }, icon('download'), 'Audio')
        : null,
      h('div', { class: 'button-group', role: 'group', 'aria-label': 'Download the transcript' },
        h('span', { class: 'group-label', 'aria-hidden': 'true' }, 'Transcript'),
        EXPORTS.map(([format, name]) => h('a', {
          class: 'button small', href: urls.export(session.id, format), download: '',
          'aria-label': `Download the transcript as ${name}`,
        }, format.toUpperCase()))));
    const deleteButton = h('button', { type: 'button', class: 'button small danger-outline', onclick: confirmDelete },
      icon('trash'), 'Delete');

    parts.root = h('article', { class: 'card session', 'aria-labelledby': 'session-heading' },
      h('div', { class: 'session-head' }, backButton(), parts.titleRow, parts.meta, parts.tags.el),
      parts.status,
      parts.media,
      h('div', { class: 'session-actions' }, downloads, shareView(session.id), deleteButton),
      parts.model.el,
      h('h3', { class: 'section-title' }, 'Transcript'),
      parts.speakers.el,
      parts.transcriptBox,
      parts.versions.el);
    parts.speakers.attach(parts.transcript.el);
    parts.heading.id = 'session-heading';
    current.parts = parts;
    replace(container, parts.root);
    renderMeta(session);
    renderStatus(session.status);
    renderTranscript(session.transcription?.segments || [], 0, session.status.status);
    parts.versions.refresh();
  }

  function renderMeta(session) {
    const bits = [
      formatDate(session.created),
      session.duration !== null && session.duration !== undefined ? formatDuration(session.duration) : null,
      sourceLabel(session.source),
      formatBytes(session.size_bytes),
    ].filter(Boolean);
    replace(current.parts.meta, bits.map((bit) => h('span', {}, bit)));
    current.parts.meta.title = session.original_filename ? `Original file: ${session.original_filename}` : '';
    current.parts.model.update(session);
  }

  function renderTranscript(segments, from, status, redraw = false) {
    const { transcript, transcriptBox, speakers } = current.parts;
    speakers.update(current.session);
    transcript.update(segments, redraw ? 0 : from);
    if (segments.length) {
      if (transcriptBox.firstChild !== transcript.el) replace(transcriptBox, transcript.el);
      return;
    }
    const text = {
      queued: 'The transcript appears here as it is written.',
      processing: 'The transcript appears here as it is written.',
      error: 'No transcript: the job failed before any speech was written.',
      cancelled: 'Cancelled before any speech was written.',
    }[status] || 'No speech was found in this recording.';
    replace(transcriptBox, h('p', { class: 'empty' }, text));
  }

  function renderStatus(status) {
    const { parts } = current;
    replace(parts.status, statusNotice(status, { cancel, retry, remove: confirmDelete }));
    parts.transcript.editable(!isUnfinished(status.status)); // the server refuses edits while a job writes
  }

  // -- following a running job ------------------------------------------------------------------

  function startFollowing() {
    const { id, session } = current;
    current.stopFollowing?.();
    current.stopFollowing = follow(id, {
      status: (status) => {
        if (current?.id !== id) return;
        current.session.status = status;
        renderStatus(status);
        current.parts.model.update(current.session);
      },
      segments: (segments, from) => {
        if (current?.id === id) renderTranscript(segments, from, current.session.status.status);
      },
      end: () => {
        if (current?.id === id) refreshDetails();
      },
      deleted: () => {
        if (current?.id === id) reopen(id);
      },
    }, { duration: session.duration, status: session.status, focus: true });
  }

  async function refreshDetails() {
    const { id } = current;
    try {
      const session = await getSession(id);
      if (current?.id !== id) return;
      current.session = session;
      renderMeta(session);
      renderStatus(session.status);
      renderTranscript(session.transcription?.segments || [], 0, session.status.status);
      current.parts.versions.refresh();
      emit(SESSIONS_CHANGED, { id });
    } catch {
      // the stream already showed the final state; details refresh on the next open
    }
  }

  async function cancel(button) {
    button.disabled = true;
    button.lastChild.textContent = 'Cancelling…';
    try {
      await cancelSession(current.id);
    } catch (error) {
      button.disabled = false;
      button.lastChild.textContent = 'Cancel';
      notify(error.message, { kind: 'error' });
    }
  }

  async function retry(button) {
    const { id } = current;
    button.disabled = true;
    try {
      const status = await retrySession(id);
      if (current?.id === id) followAgain(status);
    } catch (error) {
      button.disabled = false;
      notify(error.message, { kind: 'error' });
    }
  }

  /** The job runs again (a retry or a retranscription): show it queued and follow it to its end. */
  function followAgain(status) {
    const { id } = current;
    current.session.status = { ...current.session.status, ...status, status: status.status || 'queued' };
    renderStatus(current.session.status);
    renderTranscript(current.session.transcription?.segments || [], 0, current.session.status.status);
    current.parts.model.update(current.session);
    rewatch(id);
    startFollowing();
    emit(SESSIONS_CHANGED, { id });
  }

  // -- editing a segment ------------------------------------------------------------------------

  async function saveSegment(index, text) {
    const { id } = current;
    const transcription = await editSegment(id, index, text); // a refusal stays in the editor
    if (current?.id !== id) return;
    current.session.transcription = transcription;
    current.parts.transcript.update(transcription.segments, index);
    current.parts.transcript.editButton(index)?.focus();
    current.parts.versions.refresh();
    notify('Saved. The text before the edit is kept as an earlier version.');
    emit(SESSIONS_CHANGED, { id });
  }

  // -- rename -----------------------------------------------------------------------------------

  function startRename() {
    const { parts, session } = current;
    const input = h('input', { type: 'text', class: 'input', value: session.title || '', maxlength: '200',
      required: true, 'aria-label': 'New title' });
    const error = h('p', { class: 'field-error', role: 'alert' });
    const form = h('form', { class: 'rename-form' },
      input,
      h('button', { type: 'submit', class: 'button small primary' }, 'Save'),
      h('button', { type: 'button', class: 'button small', onclick: () => endRename(form) }, 'Cancel'),
      error);
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        endRename(form);
      }
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const title = input.value.trim();
      if (!title) {
        error.textContent = 'A title must not be empty.';
        return;
      }
      form.querySelectorAll('button, input').forEach((el) => { el.disabled = true; });
      try {
        const saved = await renameSession(session.id, title);
        if (current?.id !== session.id) return;
        current.session.title = saved.title;
        parts.heading.textContent = saved.title;
        endRename(form);
        notify(`Renamed to “${saved.title}”`);
        emit(SESSIONS_CHANGED, { id: session.id });
      } catch (failure) {
        form.querySelectorAll('button, input').forEach((el) => { el.disabled = false; });
        error.textContent = failure.message;
        input.focus();
      }
    });
    parts.titleRow.replaceWith(form);
    input.focus();
    input.select();
  }

  function endRename(form) {
    form.replaceWith(current.parts.titleRow);
    current.parts.renameButton.focus();
  }

  // -- delete -----------------------------------------------------------------------------------

  async function confirmDelete() {
    const { id } = current;
    // Sizes change (a rename, a finished job): ask the server what would be removed now.
    const session = await getSession(id).catch(() => current?.session);
    if (!session || current?.id !== id) return;
    const segments = session.transcription?.segments?.length || 0;
    const audio = session.has_audio
      ? `the audio file${session.original_filename ? ` (${session.original_filename})` : ''}`
      : session.chunks ? `the audio (${session.chunks} live ${session.chunks === 1 ? 'chunk' : 'chunks'})` : null;
    const transcript = segments ? `the transcript (${segments} ${segments === 1 ? 'segment' : 'segments'})` : 'its transcript, if any';
    const removed = [audio, transcript].filter(Boolean).join(' and ');
    const confirmed = await confirmAction({
      title: `Delete “${session.title || 'Untitled'}”?`,
      body: [
        h('p', {}, `This removes ${removed} from the server, with everything else stored for this session: `,
          h('strong', {}, `${formatBytes(session.size_bytes)} (${exactBytes(session.size_bytes)})`), '.'),
        h('p', { class: 'muted' }, 'This cannot be undone.'),
      ],
      confirmLabel: 'Delete for good',
      danger: true,
    });
    if (!confirmed || current?.id !== session.id) return;
    try {
      await deleteSession(session.id);
    } catch (error) {
      notify(error.message, { kind: 'error' });
      return;
    }
    notify(`Deleted “${session.title || 'Untitled'}”`);
    emit(SESSIONS_CHANGED, { id: session.id, deleted: true });
    close();
    onClose();
    document.getElementById('search-input')?.focus();
  }

  // -- seeking from a search hit ----------------------------------------------------------------

  function seek({ start }) {
    const { parts, session } = current;
    const segments = session.transcription?.segments || [];
    let index = segments.findIndex((segment) => Math.abs(segment.start - start) < 0.01);
    if (index < 0) index = segments.findIndex((segment) => start >= segment.start && start < segment.end);
    parts.player?.seek(start);
    if (index >= 0) {
      parts.transcript.mark(index, { scroll: true });
      parts.transcript.segmentButton(index)?.focus({ preventScroll: false });
    }
  }

  return {
    id: () => current?.id || null,
    open,
    close,
    seek: (target) => current?.parts && seek(target),
  };
}
