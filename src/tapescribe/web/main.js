// Wiring: the tabs and the address. The URL's hash is the page's only state worth keeping across
// a reload (#record, #upload, #live, #history, #history/<session id>); everything else comes
// from the server.

import { $ } from './dom.js';
import { setupTabs } from './tabs.js';
import { setupRecord } from './record.js';
import { setupUpload } from './upload.js';
import { setupLive } from './live.js';
import { setupHistory } from './history.js';
import { api, getHealth } from './api.js';

const historyTab = setupHistory();
setupRecord();
setupUpload();
setupLive();

let current = null;

const tabs = setupTabs($('[role="tablist"]'), (name) => {
  const openId = name === 'history' ? historyTab.openId() : null;
  const hash = openId ? `#history/${openId}` : `#${name}`;
  if (location.hash !== hash) location.hash = hash;
  else route();
});

function route() {
  const [name, id] = location.hash.replace(/^#/, '').split('/');
  const tab = tabs.names.includes(name) ? name : 'record';
  tabs.select(tab);
  if (tab === 'history') historyTab.show(id || null, { entering: current !== 'history' });
  current = tab;
}

window.addEventListener('hashchange', route);
route();

// Signing out only means something when the server asks for a key.
getHealth().then((health) => {
  $('#sign-out').hidden = !health.login_required;
  // With users, say who is signed in (each person sees only their own recordings).
  if (health.login_required) {
    api('/me').then((me) => { if (me.name) $('#signed-in-as').textContent = `Signed in as ${me.name}`; }, () => {});
  }
}, () => {});
