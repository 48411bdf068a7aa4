// How many speakers to label: Off, Auto (the server counts them) or a number, for an upload, a
// recording or a live stream (its second pass). The server's own setting is chosen at first
// (GET /models says it, and whether the speakers extra is installed); the choice is always sent,
// so what is shown is what the job gets. Without the extra only Off is offered, with the command
// that adds it.

import { getModels } from './api.js';
import { h } from './dom.js';

export const MOST_OFFERED = 10; // the page offers 2..10; the API takes up to GET /models' `max`

/** The <option>s: Off and Auto, then 2..MOST_OFFERED (and `also`, a number the server defaults to). */
export function speakerOptions({ off = 'Off', also = null } = {}) {
  const numbers = Array.from({ length: MOST_OFFERED - 1 }, (_, i) => i + 2);
  if (Number.isInteger(also) && !numbers.includes(also)) numbers.push(also);
  return [
    off ? h('option', { value: 'off' }, off) : null,
    h('option', { value: 'auto' }, 'Auto (count them)'),
    numbers.sort((a, b) => a - b).map((n) => h('option', { value: String(n) }, `${n} speakers`)),
  ];
}

/** What the server says about speakers ({available, default, max}), or null when it cannot be read. */
export async function speakerOffer() {
  try {
    return (await getModels()).speakers || null;
  } catch {
    return null;
  }
}

/** A labelled select, `id` for its label; `value()` is {speakers} (or {} when the extra is missing). */
export function speakerChoice(id) {
  const select = h('select', { class: 'input select', id, name: 'speakers' }, speakerOptions());
  const hint = h('p', { class: 'speaker-hint small', 'aria-live': 'polite' });
  let available = true;
  let touched = false; // chosen before the server's default arrived: kept
  select.addEventListener('change', () => { touched = true; });
  const field = h('div', { class: 'choice-field' }, h('label', { for: id }, 'Speakers'), select);

  const ready = speakerOffer().then((offer) => {
    if (!offer) return;
    available = offer.available;
    if (!available) {
      select.replaceChildren(h('option', { value: 'off' }, 'Off'));
      select.disabled = true;
      hint.textContent = "Speaker labels need the speakers extra on the server: pip install 'tapescribe[speakers]'.";
      return;
    }
    const chosen = select.value;
    select.replaceChildren(...speakerOptions({ also: offer.default }).flat());
    select.value = touched ? chosen : String(offer.default); // the server's default until one is chosen
  });

  return {
    field,
    hint,
    ready,
    value: () => (available ? { speakers: select.value } : {}),
    disable(disabled) {
      select.disabled = disabled || !available;
    },
  };
}
