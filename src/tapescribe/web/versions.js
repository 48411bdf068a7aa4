// Earlier transcripts of a session (kept before each edit, re-transcription and a live stream's
// second pass), newest first, each one readable as it was. Nothing here changes them.

import { getVersion, listVersions } from './api.js';
import { h, icon, replace } from './dom.js';
import { formatDate } from './format.js';
import { transcriptView } from './transcript.js';
import { restoreButton } from './library.js';

const LABELS = {
  'before-edit': 'Before an edit',
  'before-retranscribe': 'Before retranscription',
  'live-draft': 'Live captions',
  'before-speaker-rename': 'Before a speaker was named',
  'before-restore': 'Before a restore',
};

const labelOf = (label) => LABELS[label] || label;

export function versionsView(sessionId, { onRestored = () => {} } = {}) {
  const list = h('ol', { class: 'version-list', 'aria-label': 'Earlier versions, newest first' });
  const viewer = h('div', { class: 'version-viewer' });
  const message = h('p', { class: 'muted small' });
  const el = h('section', { class: 'versions', 'aria-labelledby': `versions-${sessionId}` },
    h('h3', { class: 'section-title', id: `versions-${sessionId}` }, 'Earlier versions'),
    message, list, viewer);
  let generation = 0;

  async function refresh() {
    const mine = ++generation;
    let versions;
    try {
      versions = (await listVersions(sessionId)).versions;
    } catch (error) {
      if (mine === generation) message.textContent = `Earlier versions could not be listed: ${error.message}`;
      return;
    }
    if (mine !== generation) return;
    message.textContent = versions.length ? ''
      : 'None yet. Each edit and each retranscription keeps the transcript as it was here.';
    replace(list, versions.slice().reverse().map((version) => h('li', { class: 'version', dataset: { number: String(version.number) } },
      h('div', { class: 'version-head' },
        h('span', { class: 'version-title' }, `Version ${version.number} · ${labelOf(version.label)}`),
        h('span', { class: 'muted small' }, formatDate(version.saved))),
      h('p', { class: 'version-preview small' }, version.preview || '(no text)'),
      h('button', {
        type: 'button', class: 'button small', 'aria-label': `View version ${version.number}`,
        onclick: () => show(version.number),
      }, 'View'),
      restoreButton(sessionId, version.number, { onRestored }))));
  }

  async function show(number) {
    replace(viewer, h('p', { class: 'muted small' }, `Loading version ${number}…`));
    let version;
    try {
      version = await getVersion(sessionId, number);
    } catch (error) {
      replace(viewer, h('p', { class: 'field-error', role: 'alert' }, error.message));
      return;
    }
    const transcript = transcriptView({ label: `Transcript of version ${number}` });
    transcript.set(version.transcription?.segments || []);
    const heading = h('h4', { class: 'card-title', tabindex: '-1' },
      `Version ${number} · ${labelOf(version.label)} · ${formatDate(version.saved)}`);
    replace(viewer, h('div', { class: 'version-view', role: 'region', 'aria-label': `Version ${number}, read only` },
      h('div', { class: 'version-head' }, heading,
        h('button', { type: 'button', class: 'button ghost small', onclick: () => replace(viewer) }, icon('x'), 'Close')),
      h('p', { class: 'muted small' }, 'Read only: the transcript as it was then.',
        version.transcription?.model ? ` Model: ${version.transcription.model}.` : ''),
      transcript.length ? h('div', { class: 'scroll-box version-transcript' }, transcript.el)
        : h('p', { class: 'empty' }, 'This version has no text.')));
    heading.focus();
  }

  return { el, refresh };
}
