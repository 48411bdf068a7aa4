// Correcting one segment in place: its text becomes a text field; Enter or leaving the field saves
// (PATCH /session/<id>/segments/<n>, which keeps the transcript before the edit as a version),
// Escape puts the text back. While saving, the field waits; a refusal is shown beside it.

import { h } from './dom.js';

/**
 * Turn the segment `li` into an editor. `save(text)` resolves once the server kept the text (the
 * caller then draws the new transcript, replacing `li`); `done()` is called when editing ends
 * without a save (cancelled or unchanged).
 */
export function editInPlace(li, segment, { save, done }) {
  const body = li.querySelector('.segment-body');
  if (!body || li.classList.contains('is-editing')) return;
  const original = (segment.text || '').trim();
  const field = h('textarea', {
    class: 'input segment-input', rows: String(Math.min(6, Math.ceil(original.length / 60) || 1)),
    'aria-label': 'Segment text (Enter saves, Escape cancels)', maxlength: '20000',
  });
  field.value = original;
  const error = h('p', { class: 'field-error', role: 'alert' });
  const editor = h('div', { class: 'segment-editor' }, body.querySelector('.segment-time').cloneNode(true), field, error);
  let state = 'editing'; // then 'saving', or 'closed'

  function close() {
    state = 'closed';
    li.classList.remove('is-editing');
    editor.replaceWith(body);
    done?.();
  }

  async function commit() {
    if (state !== 'editing') return;
    const text = field.value.trim();
    if (text === original) {
      close();
      return;
    }
    state = 'saving';
    field.readOnly = true;
    li.setAttribute('aria-busy', 'true');
    error.textContent = '';
    try {
      await save(text);
      state = 'closed';
    } catch (failure) {
      state = 'editing';
      field.readOnly = false;
      error.textContent = failure.message;
      field.focus();
    } finally {
      li.removeAttribute('aria-busy');
    }
  }

  field.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      commit();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      if (state === 'editing') close();
    }
  });
  field.addEventListener('blur', () => commit());

  li.classList.add('is-editing');
  body.replaceWith(editor);
  field.focus();
  field.setSelectionRange(field.value.length, field.value.length);
}
