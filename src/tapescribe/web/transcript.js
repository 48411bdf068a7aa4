// A transcript as a list of timed segments. Interactive transcripts make each segment a button
// (seek there); they can mark the segment being played. With `onEdit`, each segment also has an
// Edit button (hidden while the list is not `editable`, e.g. while a job is still writing it).

import { h, icon } from './dom.js';
import { formatClock } from './format.js';

export function transcriptView({ onSelect = null, onEdit = null, label = 'Transcript', decorate = null } = {}) {
  const list = h('ol', { class: 'transcript', 'aria-label': label });
  let segments = [];
  let current = -1;

  function item(segment, index) {
    const time = h('span', { class: 'segment-time' }, formatClock(segment.start));
    const text = h('span', { class: 'segment-text' }, (segment.text || '').trim());
    const body = onSelect
      ? h('button', {
        type: 'button', class: 'segment-body',
        'aria-label': `${formatClock(segment.start)}: ${(segment.text || '').trim()}`,
        onclick: () => onSelect(segment, index),
      }, time, text)
      : h('div', { class: 'segment-body' }, time, text);
    const li = h('li', { class: 'segment', dataset: { index: String(index), start: String(segment.start) } }, body);
    if (onEdit) {
      li.append(h('button', {
        type: 'button', class: 'button ghost small segment-edit',
        'aria-label': `Edit the text at ${formatClock(segment.start)}`, title: 'Edit this text',
        onclick: () => onEdit(segments[index], index, li),
      }, icon('edit')));
    }
    decorate?.(segment, li); // e.g. the speaker's name and colour (speakers.js)
    return li;
  }

  function update(all, from = 0) {
    const start = Math.min(from, segments.length);
    while (list.children.length > start) list.lastElementChild.remove();
    segments = all.slice();
    for (let i = start; i < segments.length; i += 1) list.append(item(segments[i], i));
    if (current >= segments.length) current = -1;
  }

  function mark(index, { scroll = false } = {}) {
    if (index === current) return;
    list.children[current]?.classList.remove('is-current');
    list.children[current]?.removeAttribute('aria-current');
    current = index;
    const el = list.children[index];
    if (!el) return;
    el.classList.add('is-current');
    el.setAttribute('aria-current', 'true');
    if (scroll) scrollWithin(el);
  }

  function indexAt(time) {
    for (let i = 0; i < segments.length; i += 1) {
      if (time >= segments[i].start && time < segments[i].end) return i;
    }
    return -1;
  }

  return {
    el: list,
    update,
    set: (all) => update(all, 0),
    mark,
    highlight: (time, options) => mark(indexAt(time), options),
    get length() {
      return segments.length;
    },
    segmentButton: (index) => list.children[index]?.querySelector('button'),
    editButton: (index) => list.children[index]?.querySelector('.segment-edit'),
    editable: (flag) => { list.dataset.editable = String(Boolean(flag)); },
  };
}

// Scrolls only the transcript's own scroll box, never the page, so reading elsewhere is not
// interrupted while audio plays.
function scrollWithin(el) {
  const box = el.closest('.scroll-box');
  if (!box || box.scrollHeight <= box.clientHeight) return;
  const top = el.offsetTop - box.offsetTop;
  if (top < box.scrollTop || top + el.offsetHeight > box.scrollTop + box.clientHeight) {
    box.scrollTo({ top: Math.max(0, top - box.clientHeight / 3), behavior: 'smooth' });
  }
}
