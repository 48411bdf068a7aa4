// A modal confirmation built on <dialog>: focus is trapped and Escape cancels, by the browser.

import { h, icon } from './dom.js';

export function confirmAction({ title, body, confirmLabel = 'OK', danger = false }) {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'button', value: 'cancel' }, 'Cancel');
    const confirm = h('button', { type: 'button', class: `button ${danger ? 'danger' : 'primary'}`, value: 'confirm' },
      danger ? icon('trash') : null, confirmLabel);
    const heading = h('h2', { id: 'confirm-title' }, title);
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'confirm-title' },
      heading,
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'dialog-actions' }, cancel, confirm));
    let answer = false;
    cancel.addEventListener('click', () => dialog.close());
    confirm.addEventListener('click', () => {
      answer = true;
      dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice has focus, so Enter alone never deletes
  });
}
