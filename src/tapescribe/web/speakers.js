// Speakers of a session's transcript: a colour and a name for each, renaming one for the whole
// session, and a filter that shows what one speaker said. Session view hooks: `el` goes above
// the transcript, `decorate` marks each segment as the transcript draws it.

import { api } from './api.js';
import { h, replace } from './dom.js';
import { notify } from './notify.js';

const COLOURS = ['#2563eb', '#c2410c', '#047857', '#be185d', '#6d28d9', '#0e7490', '#4d7c0f', '#b91c1c'];

export function speakerColour(id) {
  const number = Number.parseInt(String(id).slice(1), 10) || 1;
  return COLOURS[(number - 1) % COLOURS.length];
}

export function speakersView(sessionId, { onNamed }) {
  let names = {};
  let shown = '';
  let list = null;
  let session = null;
  const legend = h('ul', { class: 'speaker-legend', 'aria-label': 'Speakers' });
  const filter = h('select', {
    class: 'speaker-filter', 'aria-label': 'Show what one speaker said',
    onchange: () => { shown = filter.value; applyFilter(); },
  });
  const el = h('div', { class: 'speakers', hidden: true }, legend,
    h('label', { class: 'speaker-filter-label' }, 'Show ', filter));

  function swatch(id) {
    return h('span', { class: 'speaker-swatch', style: `background:${speakerColour(id)}`, 'aria-hidden': 'true' });
  }

  function update(latest) {
    session = latest;
    const ids = session.transcription?.speakers || [];
    const given = session.speaker_names || {};
    names = Object.fromEntries(ids.map((id) => [id, given[id] || `Speaker ${id.slice(1)}`]));
    if (!ids.includes(shown)) shown = '';
    el.hidden = ids.length === 0;
    replace(legend, ids.map((id) => {
      const item = h('li', { class: 'speaker' }, swatch(id), h('span', {}, names[id]));
      item.append(h('button', {
        type: 'button', class: 'button ghost small', 'aria-label': `Rename ${names[id]}`,
        onclick: () => rename(id, item),
      }, 'Rename'));
      return item;
    }));
    replace(filter, h('option', { value: '' }, 'Everyone'),
      ids.map((id) => h('option', { value: id, selected: id === shown }, names[id])));
  }

  function decorate(segment, item) {
    if (!segment.speaker) return;
    item.dataset.speaker = segment.speaker;
    item.classList.add('has-speaker');
    item.style.setProperty('--speaker-colour', speakerColour(segment.speaker));
    item.querySelector('.segment-body')?.prepend(
      h('span', { class: 'segment-speaker' }, names[segment.speaker] || segment.speaker));
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
