// The model and language a job uses: two selects, "Auto" by default, the models from GET /models.
// Auto sends nothing, so the server chooses: the language is detected on the audio, English goes to
// the fast English-only model and every other language to a multilingual one. A choice the server
// refuses (an English-only model for another language) is sent anyway and its answer shown: the
// page never swaps a model behind the person's back, it only says beforehand what will happen.

import { getModels } from './api.js';
import { h } from './dom.js';
import { LANGUAGES, languageName } from './languages.js';
import { speakerChoice } from './speaker_choice.js';

let serial = 0;

export const isEnglishOnly = (model) => Boolean(model && (model.multilingual === false || /\.en$/i.test(model.id)));

/** A multilingual model to suggest for another language: base when offered, else the first one. */
export function multilingualModel(models) {
  const multilingual = models.filter((model) => !isEnglishOnly(model));
  return multilingual.find((model) => model.id === 'base') || multilingual[0] || null;
}

/**
 * Two labelled selects (three with `speakers`: speaker_choice.js). `value()` is {model?, language?,
 * speakers?} with the Auto model and language left out, ready to send as JSON or form fields;
 * `set({model, language})` picks given values.
 */
export function modelChoice({ label = 'Transcribe with', speakers = false } = {}) {
  const id = `choice-${(serial += 1)}`;
  const model = h('select', { class: 'input select', id: `${id}-model`, name: 'model' },
    h('option', { value: '' }, 'Auto (by language)'));
  const language = h('select', { class: 'input select', id: `${id}-language`, name: 'language' },
    h('option', { value: '' }, 'Auto (detect)'),
    LANGUAGES.map(([code, name]) => h('option', { value: code }, name)));
  const hint = h('p', { class: 'choice-hint small', 'aria-live': 'polite' });
  const who = speakers ? speakerChoice(`${id}-speakers`) : null;
  let offered = [];

  const el = h('fieldset', { class: 'model-choice' },
    h('legend', { class: 'choice-legend' }, label),
    h('div', { class: 'choice-fields' },
      h('div', { class: 'choice-field' }, h('label', { for: model.id }, 'Model'), model),
      h('div', { class: 'choice-field' }, h('label', { for: language.id }, 'Language'), language),
      who?.field),
    hint, who?.hint);

  function explain() {
    const chosen = offered.find((entry) => entry.id === model.value);
    const other = language.value && language.value !== 'en';
    if (isEnglishOnly(chosen) && other) {
      hint.textContent = `${chosen.id} writes English only: the server will refuse ${languageName(language.value)} with it. Choose a multilingual model or Auto.`;
      hint.classList.add('is-warning');
    } else {
      hint.textContent = '';
      hint.classList.remove('is-warning');
    }
  }
  model.addEventListener('change', explain);
  language.addEventListener('change', explain);

  const ready = getModels().then((answer) => {
    offered = answer.models || [];
    const current = model.value;
    model.replaceChildren(model.firstChild, ...offered.map((entry) => h('option', { value: entry.id },
      isEnglishOnly(entry) ? `${entry.id} (English only)` : entry.id)));
    model.value = current;
    return offered;
  }, () => {
    offered = []; // without the list only Auto is offered; the server still chooses well
    return offered;
  });

  return {
    el,
    ready,
    value() {
      const chosen = {};
      if (model.value) chosen.model = model.value;
      if (language.value) chosen.language = language.value;
      return { ...chosen, ...who?.value() };
    },
    async set(values) {
      await ready;
      model.value = values.model || '';
      language.value = values.language || '';
      explain();
    },
    disable(disabled) {
      model.disabled = disabled;
      language.disabled = disabled;
      who?.disable(disabled);
    },
  };
}

/** The choice as multipart fields, before the file so the server reads them first. */
export function appendChoice(form, choice) {
  for (const [key, value] of Object.entries(choice)) form.append(key, value);
  return form;
}
