// Following sessions as the server works on them, over GET /session/<id>/events.
//
// Every EventSource holds one of the browser's six HTTP/1.1 connections to the server, so at most
// MAX_STREAMS streams are open at once and the rest wait their turn. The server runs shorter
// recordings first, so waiting sessions are ordered the same way; the session someone is looking
// at (focus) always gets a stream. Several parts of the page may follow the same session and
// share one stream.

import { getSession, urls } from './api.js';

const MAX_STREAMS = 2;
const FINISHED = new Set(['done', 'error', 'cancelled']);

const watches = new Map();
let sequence = 0;

function watchFor(id) {
  let watch = watches.get(id);
  if (!watch) {
    watch = { id, listeners: new Set(), status: null, segments: [], source: null, ended: false,
      deleted: false, duration: null, order: sequence++, retryTimer: null };
    watches.set(id, watch);
  }
  return watch;
}

function notify(watch, kind, ...args) {
  for (const listener of [...watch.listeners]) listener[kind]?.(...args);
}

function focused(watch) {
  return [...watch.listeners].some((listener) => listener.focus);
}

function rank(watch) {
  const status = watch.status?.status;
  return [focused(watch) ? 0 : 1, status === 'processing' ? 0 : 1, watch.duration ?? Infinity, watch.order];
}

function compare(a, b) {
  const ra = rank(a);
  const rb = rank(b);
  for (let i = 0; i < ra.length; i += 1) if (ra[i] !== rb[i]) return ra[i] - rb[i];
  return 0;
}

function schedule() {
  const wanted = [...watches.values()].filter((w) => !w.ended && w.listeners.size && !w.retryTimer).sort(compare);
  const open = new Set(wanted.filter(focused));
  for (const watch of wanted) {
    if (open.size >= MAX_STREAMS) break;
    open.add(watch);
  }
  for (const watch of watches.values()) {
    if (watch.source && !open.has(watch)) closeStream(watch);
  }
  for (const watch of open) if (!watch.source) openStream(watch);
}

function closeStream(watch) {
  watch.source?.close();
  watch.source = null;
}

function finish(watch, status) {
  watch.status = status;
  watch.ended = true;
  closeStream(watch);
  notify(watch, 'end', status);
  schedule();
}

function openStream(watch) {
  const source = new EventSource(urls.events(watch.id));
  watch.source = source;
  source.addEventListener('status', (event) => {
    const status = JSON.parse(event.data);
    watch.status = status;
    notify(watch, 'status', status);
    // Close before the server does: an EventSource would otherwise reconnect and replay it all.
    if (FINISHED.has(status.status)) finish(watch, status);
    else schedule();
  });
  source.addEventListener('segments', (event) => {
    const data = JSON.parse(event.data);
    watch.segments = watch.segments.slice(0, data.from).concat(data.segments);
    notify(watch, 'segments', watch.segments, data.from);
  });
  source.addEventListener('deleted', () => {
    watch.deleted = true;
    finish(watch, watch.status);
    notify(watch, 'deleted');
  });
  source.onerror = () => {
    // CONNECTING means the browser retries by itself; CLOSED means it gave up (e.g. a 404).
    if (source.readyState === EventSource.CLOSED && watch.source === source) {
      closeStream(watch);
      recover(watch);
    }
  };
}

async function recover(watch) {
  try {
    const session = await getSession(watch.id);
    watch.segments = session.transcription?.segments || watch.segments;
    notify(watch, 'segments', watch.segments, 0);
    if (FINISHED.has(session.status.status)) {
      finish(watch, session.status);
      return;
    }
    notify(watch, 'status', session.status);
  } catch (error) {
    if (error.status === 404) {
      watch.deleted = true;
      finish(watch, watch.status);
      notify(watch, 'deleted');
      return;
    }
  }
  watch.retryTimer = setTimeout(() => {
    watch.retryTimer = null;
    schedule();
  }, 3000);
}

/**
 * Follow one session until its job ends. `listener` may have status(status), segments(all, from),
 * end(status) and deleted(); `hint` gives what is already known: {status, duration, focus}.
 * Returns a function that stops following.
 */
export function follow(id, listener, hint = {}) {
  const watch = watchFor(id);
  const entry = { ...listener, focus: Boolean(hint.focus) };
  if (hint.duration !== undefined && hint.duration !== null) watch.duration = hint.duration;
  if (!watch.status && hint.status) watch.status = hint.status;
  watch.listeners.add(entry);
  if (watch.status) entry.status?.(watch.status);
  if (watch.segments.length) entry.segments?.(watch.segments, 0);
  if (watch.deleted) entry.deleted?.();
  else if (watch.ended) entry.end?.(watch.status);
  schedule();
  return () => {
    watch.listeners.delete(entry);
    if (!watch.listeners.size) {
      closeStream(watch);
      clearTimeout(watch.retryTimer);
      watches.delete(id);
    }
    schedule();
  };
}

/** After a retry: the session runs again, so its followers want a fresh stream. */
export function rewatch(id) {
  const watch = watches.get(id);
  if (!watch) return;
  closeStream(watch);
  watch.ended = false;
  watch.status = null;
  schedule();
}
