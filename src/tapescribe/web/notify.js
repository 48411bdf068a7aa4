// Short confirmations ("Renamed", "Deleted") in a polite live region, gone after a few seconds.

import { h, $ } from './dom.js';

export function notify(message, { kind = 'info', timeout = 4000 } = {}) {
  const region = $('#toasts');
  const toast = h('div', { class: `toast toast-${kind}` }, message);
  region.append(toast);
  setTimeout(() => {
    toast.classList.add('is-leaving');
    setTimeout(() => toast.remove(), 300);
  }, timeout);
}
