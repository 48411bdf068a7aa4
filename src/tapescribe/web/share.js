// Share / Stop sharing on a session: a read-only link for people without an account.
// The link is shown once, when made (the server keeps only its hash); Stop sharing ends it at once.

import { api } from './api.js';
import { h, replace } from './dom.js';
import { notify } from './notify.js';

export function shareView(sessionId) {
  const el = h('div', { class: 'share', role: 'group', 'aria-label': 'Share a read-only link' });
  let shared = false;
  let url = null;

  function render() {
    const link = url
      ? h('input', { class: 'share-url', type: 'text', readonly: true, value: url, 'aria-label': 'Share link',
        onfocus: (event) => event.target.select() })
      : null;
    replace(el,
      h('button', { type: 'button', class: 'button small share-button', onclick: makeLink },
        shared ? 'New share link' : 'Share'),
      shared ? h('button', { type: 'button', class: 'button small stop-sharing', onclick: stop }, 'Stop sharing') : null,
      shared && !url ? h('span', { class: 'muted small' }, 'Shared (read-only link)') : null,
      link);
  }

  async function makeLink() {
    try {
      ({ url } = await api(`/session/${sessionId}/share`, { method: 'POST' }));
      shared = true;
      render();
      if (navigator.clipboard) navigator.clipboard.writeText(url).catch(() => {});
      notify('Share link made: anyone with it can read and play this session');
    } catch (error) {
      notify(error.message, { kind: 'error' });
    }
  }

  async function stop() {
    try {
      await api(`/session/${sessionId}/share`, { method: 'DELETE' });
      shared = false;
      url = null;
      render();
      notify('The share link no longer works');
    } catch (error) {
      notify(error.message, { kind: 'error' });
    }
  }

  api(`/session/${sessionId}/share`).then((state) => { shared = state.shared; render(); }, () => render());
  render();
  return el;
}
