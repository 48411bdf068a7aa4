// Organising the library: tags (a filter above the History list, chips on each row, an editor on the
// open session), several sessions selected at once (delete, tag, untag, export as one zip), and the
// Restore button beside an earlier version. Kept apart from history.js and session.js so each of
// them only calls in here.

import { api, ApiError } from './api.js';
import { confirmAction } from './confirm.js';
import { h, icon, replace } from './dom.js';
import { formatBytes } from './format.js';
import { notify } from './notify.js';

const session = (id) => `/session/${encodeURIComponent(id)}`;
export const setTags = (id, tags) => api(session(id), { method: 'PATCH', json: { tags } });
export const bulk = (ids, action, tags = []) => api('/sessions/bulk', { method: 'POST', json: { ids, action, tags } });
export const restoreVersion = (id, number) => api(`${session(id)}/versions/${number}/restore`, { method: 'POST' });

const splitTags = (text) => text.split(',').map((tag) => tag.trim()).filter(Boolean);

// The zip of the chosen sessions' transcripts, saved as a download.
async function exportZip(ids, format = 'txt') {
  let response;
  try {
    response = await fetch('/sessions/export', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/zip' },
      body: JSON.stringify({ ids, format }),
    });
  } catch {
    throw new ApiError('Could not reach the tapescribe server.');
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new ApiError(body.error?.message || `The server answered ${response.status}.`, body.error || {});
  }
  const url = URL.createObjectURL(await response.blob());
  const link = h('a', { href: url, download: 'tapescribe-transcripts.zip', hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// -- History: the tag filter, the selection and its actions ------------------------------------------

export function libraryTools({ onFilter, onChanged, onDeleted }) {
  const selected = new Set();
  let filter = '';
  let selecting = false;
  const known = new Set();

  const datalist = h('datalist', { id: 'known-tags' });
  const filterInput = h('input', {
    type: 'search', id: 'tag-filter', class: 'input small', placeholder: 'Filter by tag', list: 'known-tags',
    autocomplete: 'off', 'aria-label': 'Show only sessions with this tag',
  });
  const selectButton = h('button', { type: 'button', class: 'button ghost small', id: 'select-sessions',
    'aria-pressed': 'false', onclick: () => setSelecting(!selecting) }, icon('check'), 'Select');
  const count = h('span', { class: 'muted small', role: 'status', id: 'selected-count' });
  const action = (label, run, extra = {}) => h('button', { type: 'button', class: 'button small', onclick: run, ...extra }, label);
  const bar = h('div', { class: 'bulk-bar', id: 'bulk-bar', hidden: true, role: 'group', 'aria-label': 'Selected sessions' },
    count,
    action('Tag…', () => changeTags('tag')),
    action('Untag…', () => changeTags('untag')),
    action('Export', exportSelected),
    action([icon('trash'), 'Delete'], removeSelected, { class: 'button small danger-outline', id: 'bulk-delete' }));
  const el = h('div', { class: 'library-tools' },
    h('div', { class: 'library-tools-row' }, filterInput, datalist, selectButton), bar);

  let filterTimer = null;
  filterInput.addEventListener('input', () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => setFilter(filterInput.value), 250);
  });

  function setFilter(value) {
    const next = value.trim().toLowerCase();
    filterInput.value = next;
    if (next === filter) return;
    filter = next;
    onFilter();
  }

  function setSelecting(on) {
    selecting = on;
    selectButton.setAttribute('aria-pressed', String(on));
    el.closest('.history-list-pane')?.classList.toggle('selecting', on);
    if (!on) selected.clear();
    renderBar();
  }

  function renderBar() {
    bar.hidden = !selecting;
    count.textContent = `${selected.size} selected`;
    for (const button of bar.querySelectorAll('button')) button.disabled = selected.size === 0;
  }

  // What a row shows besides its title: language, the first words, its tags (a click filters by one).
  function rowDetails(row) {
    for (const tag of row.tags || []) known.add(tag);
    return [
      row.preview ? h('span', { class: 'row-preview' }, row.preview) : null,
      (row.tags || []).length || row.language ? h('span', { class: 'row-tags' },
        row.language ? h('span', { class: 'row-language', title: 'Language' }, row.language) : null,
        (row.tags || []).map((tag) => h('span', { class: 'tag', dataset: { tag } }, tag))) : null,
    ];
  }

  function checkbox(row) {
    return h('input', {
      type: 'checkbox', class: 'row-select', checked: selected.has(row.id),
      'aria-label': `Select ${row.title || 'Untitled'}`, dataset: { id: row.id },
      onchange: (event) => {
        if (event.target.checked) selected.add(row.id);
        else selected.delete(row.id);
        renderBar();
      },
    });
  }

  // After the list is drawn: the selection keeps only sessions still listed; the tag suggestions grow.
  function listed(rows) {
    const ids = new Set(rows.map((row) => row.id));
    for (const id of [...selected]) if (!ids.has(id)) selected.delete(id);
    replace(datalist, [...known].sort().map((tag) => h('option', { value: tag })));
    renderBar();
  }

  async function changeTags(kind) {
    const answer = window.prompt(kind === 'tag' ? 'Tags to add (comma-separated):' : 'Tags to remove (comma-separated):');
    if (answer === null) return;
    const tags = splitTags(answer);
    if (!tags.length) return;
    await run(() => bulk([...selected], kind, tags), kind === 'tag' ? 'Tagged' : 'Untagged');
  }

  async function removeSelected() {
    const ids = [...selected];
    const ok = await confirmAction({
      title: `Delete ${ids.length} ${ids.length === 1 ? 'session' : 'sessions'}?`,
      body: h('p', {}, 'Their audio, transcripts and earlier versions are removed from the server. This cannot be undone.'),
      confirmLabel: 'Delete', danger: true,
    });
    if (!ok) return;
    const answer = await run(() => bulk(ids, 'delete'), 'Deleted');
    if (answer) onDeleted(answer.results.filter((item) => item.ok).map((item) => item.id));
  }

  async function exportSelected() {
    try {
      await exportZip([...selected]);
    } catch (error) {
      notify(error.message, { kind: 'error' });
    }
  }

  async function run(request, done) {
    let answer;
    try {
      answer = await request();
    } catch (error) {
      notify(error.message, { kind: 'error' });
      return null;
    }
    const failed = answer.results.filter((item) => !item.ok);
    const made = answer.results.length - failed.length;
    notify(failed.length ? `${done} ${made}; ${failed.length} could not be: ${failed[0].error.message}`
      : `${done} ${made} ${made === 1 ? 'session' : 'sessions'}.`, { kind: failed.length ? 'error' : 'info' });
    for (const item of answer.results) if (item.ok) selected.delete(item.id);
    onChanged();
    return answer;
  }

  return { el, tag: () => filter || null, setFilter, rowDetails, checkbox, listed };
}

// -- the open session: its tags, edited in place ----------------------------------------------------

export function tagEditor(sessionId, tags, { onChange }) {
  let current = [...(tags || [])];
  const chips = h('ul', { class: 'tag-list', 'aria-label': 'Tags' });
  const input = h('input', { type: 'text', class: 'input small', placeholder: 'Add a tag', maxlength: '40',
    'aria-label': 'Add a tag', id: `tag-input-${sessionId}` });
  const error = h('p', { class: 'field-error', role: 'alert' });
  const form = h('form', { class: 'tag-form' }, input,
    h('button', { type: 'submit', class: 'button small' }, 'Add'));
  const el = h('div', { class: 'tag-editor' }, chips, form, error);

  function render() {
    replace(chips, current.map((tag) => h('li', { class: 'tag', dataset: { tag } }, tag,
      h('button', { type: 'button', class: 'tag-remove', 'aria-label': `Remove tag ${tag}`,
        onclick: () => save(current.filter((other) => other !== tag)) }, '×'))));
  }

  async function save(next) {
    error.textContent = '';
    try {
      const record = await setTags(sessionId, next);
      current = record.tags || [];
      render();
      onChange(current);
      return true;
    } catch (problem) {
      error.textContent = problem.message;
      return false;
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const added = splitTags(input.value);
    if (!added.length) return;
    if (await save([...current, ...added])) input.value = '';
  });
  render();
  return { el };
}

// -- an earlier version: make it the current transcript ---------------------------------------------

export function restoreButton(sessionId, number, { onRestored }) {
  return h('button', {
    type: 'button', class: 'button small', 'aria-label': `Restore version ${number}`,
    onclick: async (event) => {
      const ok = await confirmAction({
        title: `Restore version ${number}?`,
        body: h('p', {}, 'It becomes the current transcript. The current one is kept as an earlier version, so this can be undone.'),
        confirmLabel: 'Restore',
      });
      if (!ok) return;
      event.target.disabled = true;
      try {
        await restoreVersion(sessionId, number);
        notify(`Version ${number} restored. The transcript before it is kept as an earlier version.`);
        onRestored();
      } catch (error) {
        event.target.disabled = false;
        notify(error.message, { kind: 'error' });
      }
    },
  }, 'Restore');
}

// -- storage: the whole data directory, with model copies and caches counted apart ------------------

export function storageDetail(el, storage) {
  if (storage.data_dir_bytes === undefined) return;
  el.textContent = `Data directory ${formatBytes(storage.data_dir_bytes)}: library ${formatBytes(storage.library_bytes)}, `
    + `models ${formatBytes(storage.model_bytes)}, caches ${formatBytes(storage.cache_bytes)}`;
  el.title = 'What a backup keeps is the library; models and caches are made again.';
}
