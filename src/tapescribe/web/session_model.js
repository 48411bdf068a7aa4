// How a session was transcribed, and transcribing it again: the model, why it was chosen, the
// language heard; a warning when an English-only model wrote a recording that is clearly in another
// language, with a one-click retranscription by a multilingual model in that language; and a
// Retranscribe control (model and language, Auto by default) for any other choice.

import { getModels, getSession, retranscribe } from './api.js';
import { isEnglishOnly, modelChoice, multilingualModel } from './choice.js';
import { h, icon, replace } from './dom.js';
import { isUnfinished } from './format.js';
import { languageName } from './languages.js';

const CLEARLY = 0.5; // a detection at least this sure is worth a warning

/** The warning's suggestion, or null: {model, language} when an English-only model heard another language. */
export function englishOnlyMismatch(session, models) {
  const used = models.find((model) => model.id === session.model) || (session.model ? { id: session.model } : null);
  const detected = session.detected_language;
  if (!isEnglishOnly(used) || !detected || detected === 'en') return null;
  if ((session.detected_language_probability ?? 0) < CLEARLY) return null;
  const multilingual = multilingualModel(models);
  return multilingual ? { model: multilingual.id, language: detected } : null;
}

/**
 * The warning about an English-only model that heard another language, or null: the same words on the
 * History view, an upload card and a recording's result. Its button asks for the suggested model and
 * language: `onFix(suggestion, button)`.
 */
export function languageWarning(session, models, { busy = false, onFix }) {
  const suggestion = englishOnlyMismatch(session, models);
  if (!suggestion || !session.has_audio) return null;
  const name = languageName(suggestion.language);
  const button = h('button', {
    type: 'button', class: 'button small primary', disabled: busy,
    onclick: () => onFix(suggestion, button),
  }, icon('retry'), `Retranscribe with ${suggestion.model} (${name})`);
  return h('div', { class: 'notice notice-warning', role: 'status' },
    h('p', {}, h('strong', {}, 'This looks like the wrong model. '),
      `The recording sounds like ${name} (${Math.round(session.detected_language_probability * 100)}% sure), `
      + `but ${session.model} writes English only, so this transcript is probably wrong.`),
    h('div', { class: 'notice-actions' }, button));
}

/**
 * Fills `box` with the language warning for session `id` once it is done (nothing when all is well, or
 * when the session or the model list cannot be read: the transcript is shown either way). Resolves to
 * the session as stored, or null.
 */
export async function showLanguageWarning(box, id, onFix) {
  let session;
  let models;
  try {
    [session, models] = await Promise.all([getSession(id), getModels().then((answer) => answer.models || [])]);
  } catch {
    return null;
  }
  replace(box, languageWarning(session, models, { onFix }));
  return session;
}

/** `onStarted(status)` is told when the server queued a retranscription, to follow it like any job. */
export function modelPanel({ onStarted }) {
  const facts = h('dl', { class: 'model-facts' });
  const warning = h('div', { class: 'language-warning' });
  const error = h('p', { class: 'field-error', role: 'alert' });
  const choice = modelChoice({ label: 'Transcribe again with' });
  const start = h('button', { type: 'button', class: 'button small primary', onclick: () => send(choice.value(), start) },
    icon('retry'), 'Retranscribe');
  const form = h('details', { class: 'retranscribe' },
    h('summary', { class: 'button small' }, 'Retranscribe…'),
    h('div', { class: 'retranscribe-body' }, choice.el,
      h('p', { class: 'muted small' }, 'The transcript as it is now, edits included, is kept as an earlier version.'),
      h('div', { class: 'notice-actions' }, start)));
  const el = h('section', { class: 'model-panel', 'aria-label': 'Model and language' }, warning, facts, form, error);
  let session = null;

  function fact(term, ...value) {
    return [h('dt', {}, term), h('dd', {}, ...value)];
  }

  async function update(next) {
    session = next;
    const busy = isUnfinished(session.status?.status);
    replace(facts,
      session.model ? fact('Model', h('strong', {}, session.model), session.model_reason ? ` · ${session.model_reason}` : '') : null,
      session.detected_language
        ? fact('Detected language', `${languageName(session.detected_language)} (${session.detected_language_probability !== null
          && session.detected_language_probability !== undefined ? `${Math.round(session.detected_language_probability * 100)}% sure` : 'probability unknown'})`)
        : null,
      session.language ? fact('Transcript language', languageName(session.language)) : null);
    form.hidden = !session.has_audio;
    start.disabled = busy;
    choice.disable(busy);
    let models;
    try {
      models = await getModels().then((answer) => answer.models || []);
    } catch {
      models = []; // the warning needs the list; the rest of the panel does not
    }
    if (session !== next) return;
    replace(warning, languageWarning(session, models, { busy, onFix: send }));
  }


  async function send(chosen, button) {
    const { id } = session;
    button.disabled = true;
    error.textContent = '';
    try {
      const status = await retranscribe(id, chosen);
      if (session?.id !== id) return;
      form.open = false;
      onStarted(status);
    } catch (failure) {
      button.disabled = false;
      error.textContent = failure.message;
    }
  }

  return { el, update };
}
