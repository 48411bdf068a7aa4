// The notice at the top of an open session that says where its job is: progress with Cancel while
// it runs, the reason with Retry and Delete when it failed, Continue when it was cancelled, and what a
// finished job has to say (fewer speakers than asked for).

import { h, icon } from './dom.js';
import { formatPercent } from './format.js';

/** The notice for `status`, or null when there is nothing to say (done without a message). `actions` has cancel, retry
 * and remove, each called with the button pressed. */
export function statusNotice(status, { cancel, retry, remove }) {
  const button = (className, iconName, label, action) => h('button', {
    type: 'button', class: `button small ${className}`, onclick: (event) => action(event.currentTarget),
  }, icon(iconName), label);
  switch (status.status) {
    case 'queued':
    case 'processing': {
      const queued = status.status === 'queued';
      const label = queued ? 'Queued: waiting for the transcriber' : `Transcribing… ${formatPercent(status.progress)}`;
      return h('div', { class: 'notice notice-progress' },
        h('div', { class: 'notice-row' },
          h('p', {}, h('strong', {}, label), status.message ? ` · ${status.message}` : ''),
          button('', 'stop', 'Cancel', cancel)),
        h('progress', { max: 1, value: queued ? null : status.progress || 0, 'aria-label': label }));
    }
    case 'error':
      return h('div', { class: 'notice notice-error', role: 'alert' },
        h('p', {}, h('strong', {}, 'Transcription failed: '), status.message || 'no reason was given.'),
        h('div', { class: 'notice-actions' },
          button('primary', 'retry', 'Retry', retry),
          button('danger-outline', 'trash', 'Delete', remove)));
    case 'cancelled':
      return h('div', { class: 'notice' },
        h('p', {}, h('strong', {}, 'Cancelled. '),
          status.progress ? `It stopped at ${formatPercent(status.progress)}; the transcript so far is kept.` : 'The transcript so far is kept.'),
        h('div', { class: 'notice-actions' }, button('primary', 'retry', 'Continue transcribing', retry)));
    case 'done': // transcribed, with something to say: fewer speakers told apart than asked for, or
      // speaker labels that failed
      return status.message ? h('div', { class: 'notice notice-warning', role: 'status' },
        h('p', {}, h('strong', {}, 'Done. '), status.message)) : null;
    default:
      return null;
  }
}
