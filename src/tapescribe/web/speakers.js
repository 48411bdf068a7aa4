// Speakers of a session's transcript: a colour and a name for each, renaming one for the whole
// session, a filter that shows what one speaker said, and "Label speakers" (POST
// /session/<id>/speakers: find them, again with another count, or take the labels off). Session view
// hooks: `el` goes above the transcript, `decorate` marks each segment as the transcript draws it.

import { api, urls } from './api.js';
import { h, icon, replace } from './dom.js';
import { formatClock, isUnfinished } from './format.js';
import { notify } from './notify.js';
import { speakerOffer, speakerOptions } from './speaker_choice.js';

const COLOURS = ['#2563eb', '#c2410c', '#047857', '#be185d', '#6d28d9', '#0e7490', '#4d7c0f', '#b91c1c'];

export function speakerColour(id) {
  const number = Number.parseInt(String(id).slice(1), 10) || 1;
  return COLOURS[(number - 1) % COLOURS.length];
}

export function speakersView(sessionId, { onNamed, onStarted, onChanged }) {
  let names = {};
  let shown = '';
  let list = null;
  let session = null;
  const legend = h('ul', { class: 'speaker-legend', 'aria-label': 'Speakers' });
  const filter = h('select', {
    class: 'input select speaker-filter', 'aria-label': 'Show what one speaker said',
    onchange: () => { shown = filter.value; applyFilter(); },
  });
  const found = h('div', { class: 'speakers-found', hidden: true }, legend,
    h('label', { class: 'speaker-filter-label' }, 'Show ', filter));
  const labelling = labelPanel(sessionId, { onStarted, onChanged });
  const el = h('div', { class: 'speakers' }, found, labelling.el);

  function swatch(id) {
    return h('span', { class: 'speaker-swatch', style: `background:${speakerColour(id)}`, 'aria-hidden': 'true' });
  }

  function update(latest) {
    session = latest;
    const ids = session.transcription?.speakers || [];
    const given = session.speaker_names || {};
    names = Object.fromEntries(ids.map((id) => [id, given[id] || `Speaker ${id.slice(1)}`]));
    if (!ids.includes(shown)) shown = '';
    found.hidden = ids.length === 0;
    labelling.update(session);
    // drawn again (a rename, the session read again): a Rename button that had the focus keeps it
    const focused = legend.contains(document.activeElement)
      ? document.activeElement.closest('[data-speaker]')?.dataset.speaker : null;
    replace(legend, ids.map((id) => {
      const item = h('li', { class: 'speaker', dataset: { speaker: id } }, swatch(id), h('span', {}, names[id]));
      item.append(h('button', {
        type: 'button', class: 'button ghost small', 'aria-label': `Rename ${names[id]}`,
        onclick: () => rename(id, item),
      }, 'Rename'));
      return item;
    }));
    if (focused) legend.querySelector(`[data-speaker="${focused}"] button`)?.focus();
    replace(filter, h('option', { value: '' }, 'Everyone'),
      ids.map((id) => h('option', { value: id, selected: id === shown }, names[id])));
  }

  function decorate(segment, item) {
    if (!segment.speaker) return;
    item.dataset.speaker = segment.speaker;
    item.classList.add('has-speaker');
    item.style.setProperty('--speaker-colour', speakerColour(segment.speaker));
    const name = names[segment.speaker] || segment.speaker;
    const body = item.querySelector('.segment-body');
    body?.prepend(h('span', { class: 'segment-speaker' }, name));
    if (body?.tagName === 'BUTTON') {
      body.setAttribute('aria-label', `${name}, ${formatClock(segment.start)}: ${(segment.text || '').trim()}`);
    }
    item.hidden = Boolean(shown) && segment.speaker !== shown;
  }

  function applyFilter() {
    for (const item of list?.children || []) item.hidden = Boolean(shown) && item.dataset.speaker !== shown;
  }

  // In place, as the session title is renamed: Enter saves, Escape keeps the name.
  function rename(id, item) {
    const input = h('input', {
      type: 'text', value: names[id], maxlength: 100, 'aria-label': `New name for ${names[id]}`,
      onkeydown: (event) => { if (event.key === 'Escape') update(session); },
    });
    const form = h('form', {
      class: 'speaker-rename',
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          onNamed(await api(`/session/${sessionId}/speakers/${id}`, { method: 'PATCH', json: { name: input.value } }));
          legend.querySelector(`[data-speaker="${id}"] button`)?.focus();
        } catch (error) {
          notify(error.message, { kind: 'error' });
        }
      },
    }, input, h('button', { type: 'submit', class: 'button small primary' }, 'Save'));
    replace(item, swatch(id), form);
    input.focus();
    input.select();
  }

  return { el, update, decorate, attach: (listEl) => { list = listEl; } };
}

/**
 * "Label speakers…": a count (Auto, 2, 3, ...; Off takes labels that are there off) and a button, for
 * a transcribed session with audio. The job is queued (`onStarted(status)`, to follow it); Off answers
 * at once (`onChanged()`, to read the session again).
 */
function labelPanel(sessionId, { onStarted, onChanged }) {
  const id = `label-speakers-${sessionId}`;
  const select = h('select', { class: 'input select', id, name: 'speakers' }, speakerOptions({ off: null }));
  const error = h('p', { class: 'field-error', role: 'alert' });
  const hint = h('p', { class: 'muted small' });
  const start = h('button', { type: 'button', class: 'button small primary', onclick: () => send() },
    icon('retry'), 'Label speakers');
  const summary = h('summary', { class: 'button small' }, 'Label speakers…');
  const el = h('details', { class: 'label-speakers', hidden: true }, summary,
    h('div', { class: 'label-speakers-body' },
      h('div', { class: 'choice-field' }, h('label', { for: id }, 'Speakers'), select),
      hint,
      h('div', { class: 'notice-actions' }, start),
      error));
  let labelled = false;
  const offer = speakerOffer();

  async function update(session) {
    const busy = isUnfinished(session.status?.status);
    const wasLabelled = labelled;
    labelled = Boolean(session.transcription?.speakers?.length);
    el.hidden = !(session.has_audio || session.chunks) || !session.transcription;
    start.disabled = busy;
    select.disabled = busy;
    summary.textContent = labelled ? 'Label speakers again…' : 'Label speakers…';
    if (labelled !== wasLabelled || !select.options.length) {
      const chosen = select.value || 'auto';
      replace(select, speakerOptions({ off: labelled ? 'Off (take the labels off)' : null }));
      select.value = [...select.options].some((option) => option.value === chosen) ? chosen : 'auto';
    }
    hint.textContent = 'Finds who speaks when in the recording; the text is not transcribed again.';
    const offered = await offer;
    if (offered && !offered.available) {
      start.disabled = true;
      select.disabled = true;
      hint.textContent = "Speaker labels need the speakers extra on the server: pip install 'tapescribe[speakers]'.";
    }
  }

  async function send() {
    start.disabled = true;
    error.textContent = '';
    try {
      const status = await api(`${urls.session(sessionId)}/speakers`, { method: 'POST', json: { speakers: select.value } });
      el.open = false;
      if (select.value === 'off') onChanged();
      else onStarted(status);
    } catch (failure) {
      start.disabled = false;
      error.textContent = failure.message;
    }
  }

  return { el, update };
}
