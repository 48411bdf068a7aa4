// The History tab: every session from the server, newest first, the storage they use, a search over
// all transcripts, and the open session beside the list (below it on a phone).

import { listSessions, search } from './api.js';
import { h, icon, replace, $ } from './dom.js';
import { follow } from './events.js';
import { on, SESSIONS_CHANGED } from './bus.js';
import {
  formatBytes, formatClock, formatDate, formatDuration, formatPercent, isUnfinished, sourceLabel, statusLabel,
} from './format.js';
import { createSessionView } from './session.js';
import { libraryTools, storageDetail } from './library.js';

const PAGE = 50;
const SEARCH_DELAY_MS = 250;

export function setupHistory() {
  const panel = $('#panel-history');
  const list = $('#session-list');
  const message = $('#history-message');
  const loadMore = $('#load-more');
  const summary = $('#storage-summary');
  const storageWarning = $('#storage-warning');
  const searchInput = $('#search-input');
  const searchResults = $('#search-results');
  const listArea = $('#session-list-area');

  const view = createSessionView($('#session-view'), {
    onClose: () => {
      location.hash = '#history';
    },
  });
  // Tags and several sessions at once (library.js): a filter and the selection's actions above the list.
  const tools = libraryTools({
    onFilter: () => {
      sessions = [];
      refresh();
    },
    onChanged: () => scheduleRefresh(),
    onDeleted: (ids) => {
      if (ids.includes(view.id())) location.hash = '#history';
    },
  });
  listArea.before(tools.el);
  const detail = h('p', { class: 'muted small', id: 'storage-detail' });
  summary.after(detail);

  let sessions = [];
  let total = 0;
  let loading = null;
  let stale = true;
  let pendingSeek = null;
  const followers = new Map();

  // -- the list ---------------------------------------------------------------------------------

  async function refresh() {
    const request = (loading = listSessions(Math.max(PAGE, sessions.length), 0, tools.tag()));
    try {
      const page = await request;
      if (request !== loading) return; // a newer refresh started meanwhile
      sessions = page.sessions;
      total = page.total;
      stale = false;
      renderSummary(page.storage);
      renderList();
    } catch (error) {
      if (request !== loading) return;
      replace(message, h('div', { class: 'notice notice-error', role: 'alert' },
        h('p', {}, error.message),
        h('button', { type: 'button', class: 'button small', onclick: refresh }, 'Try again')));
    }
  }

  async function more() {
    loadMore.disabled = true;
    try {
      const page = await listSessions(PAGE, sessions.length, tools.tag());
      const known = new Set(sessions.map((s) => s.id));
      sessions = sessions.concat(page.sessions.filter((s) => !known.has(s.id)));
      total = page.total;
      renderSummary(page.storage);
      renderList();
    } catch (error) {
      replace(message, h('p', { class: 'notice notice-error', role: 'alert' }, error.message));
    } finally {
      loadMore.disabled = false;
    }
  }

  function renderSummary(storage) {
    const count = storage.session_count;
    summary.textContent = `${count} ${count === 1 ? 'session' : 'sessions'} · ${formatBytes(storage.total_bytes)} used`;
    summary.title = `${storage.total_bytes.toLocaleString()} bytes on the server`;
    storageDetail(detail, storage);
    renderStorageWarning(storage);
  }

  // The server's free disk space, shown once it runs low: nothing is ever deleted to make room.
  function renderStorageWarning(storage) {
    storageWarning.hidden = !storage.low_space && !storage.disk_full;
    if (storageWarning.hidden) return;
    const free = `${formatBytes(storage.free_bytes)} free`;
    replace(storageWarning,
      h('p', {}, h('strong', {}, storage.disk_full ? 'The server\'s disk is full' : 'The server is low on disk space'),
        ` (${free}, warning below ${formatBytes(storage.low_space_bytes)}).`),
      h('p', {}, storage.disk_full
        ? 'New recordings and uploads are refused and transcriptions wait until space is freed. Nothing stored was lost.'
        : 'New recordings and uploads may soon be refused. Delete sessions you no longer need, or free space on the server.'));
  }

  function renderList() {
    replace(list, sessions.map(row));
    replace(message, sessions.length ? null : h('div', { class: 'empty-state' },
      icon('history', 'empty-icon'),
      h('p', { class: 'empty-title' }, tools.tag() ? `No session is tagged “${tools.tag()}”` : 'No sessions yet'),
      h('p', { class: 'muted' }, 'Record, upload or go live; every session is listed here until you delete it.')));
    loadMore.hidden = sessions.length >= total;
    tools.listed(sessions);
    followUnfinished();
  }

  function row(session) {
    const unfinished = isUnfinished(session.status);
    const progress = h('span', { class: 'row-progress', hidden: !unfinished },
      h('span', { class: 'row-progress-fill', style: `--progress:${session.progress || 0}` }));
    const badge = h('span', { class: `badge badge-${session.status}` }, badgeText(session));
    const button = h('button', {
      type: 'button', class: 'session-row', dataset: { id: session.id },
      'aria-current': session.id === view.id() ? 'true' : null,
      onclick: () => {
        location.hash = `#history/${session.id}`;
      },
    },
    h('span', { class: 'row-top' }, h('span', { class: 'row-title' }, session.title || 'Untitled'), badge),
    h('span', { class: 'row-meta' },
      h('span', {}, formatDate(session.created)),
      session.duration !== null ? h('span', {}, formatDuration(session.duration)) : null,
      h('span', {}, sourceLabel(session.source)),
      h('span', {}, formatBytes(session.size_bytes))),
    session.status === 'error' && session.message ? h('span', { class: 'row-message' }, session.message) : null,
    tools.rowDetails(session),
    progress);
    return h('li', {}, tools.checkbox(session), button);
  }

  function badgeText(session) {
    if (session.status === 'processing' && session.progress) return `${statusLabel(session.status)} ${formatPercent(session.progress)}`;
    return statusLabel(session.status);
  }

  function followUnfinished() {
    const wanted = new Set(sessions.filter((s) => isUnfinished(s.status)).map((s) => s.id));
    for (const [id, stop] of followers) {
      if (!wanted.has(id)) {
        stop();
        followers.delete(id);
      }
    }
    for (const session of sessions) {
      if (!wanted.has(session.id) || followers.has(session.id)) continue;
      followers.set(session.id, follow(session.id, {
        status: (status) => updateRow(session.id, status),
        end: () => scheduleRefresh(),
        deleted: () => scheduleRefresh(),
      }, { duration: session.duration, status: { status: session.status, progress: session.progress } }));
    }
  }

  function updateRow(id, status) {
    const session = sessions.find((s) => s.id === id);
    if (!session) return;
    Object.assign(session, { status: status.status, progress: status.progress, message: status.message });
    const button = list.querySelector(`.session-row[data-id="${id}"]`);
    if (!button) return;
    const badge = button.querySelector('.badge');
    badge.className = `badge badge-${status.status}`;
    badge.textContent = badgeText(session);
    const fill = button.querySelector('.row-progress-fill');
    fill.style.setProperty('--progress', status.progress || 0);
    button.querySelector('.row-progress').hidden = !isUnfinished(status.status);
  }

  let refreshTimer = null;
  function scheduleRefresh() {
    stale = true;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      if (!panel.hidden) refresh();
    }, 200);
  }

  loadMore.addEventListener('click', more);
  on(SESSIONS_CHANGED, scheduleRefresh);

  // -- search -----------------------------------------------------------------------------------

  let searchTimer = null;
  let searchAbort = null;

  function onSearchInput() {
    clearTimeout(searchTimer);
    const query = searchInput.value.trim();
    if (!query) {
      searchAbort?.abort();
      searchResults.hidden = true;
      replace(searchResults);
      listArea.hidden = false;
      return;
    }
    searchTimer = setTimeout(() => runSearch(query), SEARCH_DELAY_MS);
  }

  async function runSearch(query) {
    searchAbort?.abort();
    const controller = (searchAbort = new AbortController());
    searchResults.hidden = false;
    listArea.hidden = true;
    searchResults.setAttribute('aria-busy', 'true');
    try {
      const answer = await search(query, controller.signal);
      renderResults(query, answer.results);
    } catch (error) {
      if (error.name === 'AbortError') return;
      replace(searchResults, h('p', { class: 'notice notice-error', role: 'alert' }, error.message));
    } finally {
      if (searchAbort === controller) searchResults.removeAttribute('aria-busy');
    }
  }

  function renderResults(query, results) {
    if (!results.length) {
      replace(searchResults, h('div', { class: 'empty-state compact' },
        h('p', { class: 'empty-title' }, `No transcript contains “${query}”`),
        h('p', { class: 'muted small' }, 'Whole words match; add * for word beginnings (speak*) or use "quotes" for a phrase.')));
      return;
    }
    const count = results.length;
    const hit = (result, segment) => h('li', {}, h('button', {
      type: 'button', class: 'hit', onclick: () => openAt(result.id, segment),
    },
    h('span', { class: 'segment-time' }, formatClock(segment.start)),
    h('span', { class: 'hit-text' }, highlighted(segment.text, segment.matches))));
    const group = (result) => h('li', { class: 'hit-group' },
      h('p', { class: 'hit-title' },
        h('span', {}, result.title || 'Untitled'),
        h('span', { class: 'muted small' }, formatDate(result.created))),
      h('ul', { class: 'hits' }, result.segments.map((segment) => hit(result, segment))));
    replace(searchResults,
      h('p', { class: 'results-count', role: 'status' },
        `${count} ${count === 1 ? 'session matches' : 'sessions match'} “${query}”`),
      h('ul', { class: 'hit-groups' }, results.map(group)));
  }

  function openAt(id, segment) {
    pendingSeek = { id, start: segment.start, index: segment.index };
    if (view.id() === id) {
      view.seek(pendingSeek);
      pendingSeek = null;
    } else {
      location.hash = `#history/${id}`;
    }
  }

  searchInput.addEventListener('input', onSearchInput);
  $('#search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    const query = searchInput.value.trim();
    if (query) runSearch(query);
  });

  // -- the tab ----------------------------------------------------------------------------------

  return {
    openId: () => view.id(),
    show(id, { entering }) {
      if (entering || stale) refresh();
      panel.classList.toggle('has-open-session', Boolean(id));
      const seekTo = pendingSeek && pendingSeek.id === id ? pendingSeek : null;
      pendingSeek = null;
      if (id) view.open(id, { seekTo, focus: !entering || Boolean(seekTo) });
      else view.close();
      for (const button of list.querySelectorAll('.session-row')) {
        if (button.dataset.id === id) button.setAttribute('aria-current', 'true');
        else button.removeAttribute('aria-current');
      }
    },
  };
}

// Each hit carries `matches`: [start, end) character offsets of the matched words in `text`.
function highlighted(text, matches) {
  if (!matches || matches.length === 0) return text;
  const parts = [];
  let at = 0;
  for (const [start, end] of matches) {
    if (start > at) parts.push(text.slice(at, start));
    parts.push(h('mark', {}, text.slice(start, end)));
    at = end;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}
