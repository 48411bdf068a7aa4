// The Record tab: record from the microphone, then POST the whole recording to /transcribe, which
// answers with the transcript once it is written. If sending fails, the recording stays in the
// page so it can be sent again or saved to disk.

import { api, retranscribe } from './api.js';
import { h, icon, replace, $ } from './dom.js';
import { emit, SESSIONS_CHANGED } from './bus.js';
import { formatClock, formatDuration } from './format.js';
import { openMicrophone, recordingFormat, recordingName, startClock, startMeter } from './mic.js';
import { transcriptView } from './transcript.js';
import { appendChoice, modelChoice } from './choice.js';
import { showLanguageWarning } from './session_model.js';

export function setupRecord() {
  const toggle = $('#record-toggle');
  const label = toggle.querySelector('.record-label');
  const clockEl = $('#record-clock');
  const meter = $('#record-meter');
  const statusLine = $('#record-status');
  const result = $('#record-result');
  const choice = modelChoice({ speakers: true });
  $('#record-choice').append(choice.el);

  let recording = null; // {mic, recorder, parts, clock, stopMeter}
  let busy = false;

  toggle.addEventListener('click', () => {
    if (recording) stop();
    else if (!busy) start();
  });

  function setState(state) {
    toggle.dataset.state = state;
    label.textContent = state === 'recording' ? 'Stop recording' : 'Start recording';
    toggle.disabled = state === 'sending';
    choice.disable(state !== 'idle');
  }

  async function start() {
    busy = true;
    statusLine.textContent = 'Opening the microphone…';
    let mic;
    try {
      mic = await openMicrophone();
    } catch (error) {
      busy = false;
      statusLine.textContent = '';
      replace(result, errorCard(error.message));
      return;
    }
    const format = recordingFormat();
    const recorder = new MediaRecorder(mic.stream, format.mimeType ? { mimeType: format.mimeType } : {});
    const parts = [];
    const chosen = choice.value();
    recorder.addEventListener('dataavailable', (event) => {
      if (event.data.size) parts.push(event.data);
    });
    recorder.addEventListener('stop', () => {
      mic.close(); // only now: closing it earlier can keep the recorder from handing over its last data
      const blob = new Blob(parts, { type: recorder.mimeType || format.mimeType });
      send(blob, recordingName('Recording', format.extension), recording?.seconds ?? 0, chosen);
    }, { once: true });
    // A timeslice hands over data every second, so a long recording is not one huge final buffer.
    recorder.start(1000);
    recording = { mic, recorder, clock: startClock(clockEl), stopMeter: startMeter(mic.analyser, meter) };
    busy = false;
    setState('recording');
    statusLine.textContent = 'Recording. Press the button again to stop and transcribe.';
    replace(result);
  }

  function stop() {
    const { recorder, clock, stopMeter } = recording;
    recording.seconds = clock.seconds();
    clock.stop();
    stopMeter();
    recorder.stop(); // its 'stop' event closes the microphone and sends the recording
  }

  async function send(blob, filename, seconds, chosen) {
    recording = null;
    busy = true;
    setState('sending');
    statusLine.textContent = `Transcribing ${formatClock(seconds)} of audio…`;
    replace(result, h('div', { class: 'card result pending', 'aria-busy': 'true' },
      h('div', { class: 'spinner', 'aria-hidden': 'true' }),
      h('p', {}, 'Transcribing your recording…')));
    const form = appendChoice(new FormData(), chosen);
    form.append('audio', blob, filename);
    try {
      const answer = await api('/transcribe', { method: 'POST', form });
      statusLine.textContent = 'Done. The recording and its transcript are in History.';
      replace(result, resultCard(answer));
      emit(SESSIONS_CHANGED, { id: answer.session_id });
    } catch (error) {
      statusLine.textContent = '';
      const sessionId = error.details?.session_id;
      if (sessionId) emit(SESSIONS_CHANGED, { id: sessionId });
      replace(result, errorCard(error.message, { blob, filename, seconds, chosen, sessionId }));
    } finally {
      busy = false;
      setState('idle');
      clockEl.textContent = '0:00';
    }
  }

  function resultCard(answer) {
    const transcript = transcriptView({ label: 'Transcript of the recording' });
    transcript.set(answer.segments || []);
    // as History shows it: an English-only model that heard another language probably wrote nonsense
    const warning = h('div', { class: 'language-warning' });
    const failure = h('p', { class: 'field-error', role: 'alert' });
    showLanguageWarning(warning, answer.session_id, async (suggestion, button) => {
      button.disabled = true;
      failure.textContent = '';
      try {
        await retranscribe(answer.session_id, suggestion);
      } catch (error) {
        button.disabled = false;
        failure.textContent = error.message;
        return;
      }
      emit(SESSIONS_CHANGED, { id: answer.session_id });
      location.hash = `#history/${answer.session_id}`; // followed there, as any job
    });
    return h('article', { class: 'card result', dataset: { sessionId: answer.session_id } },
      h('div', { class: 'result-head' },
        h('h2', { class: 'card-title' }, 'Transcript'),
        h('span', { class: 'muted small' }, formatDuration(answer.duration))),
      warning,
      failure,
      answer.segments?.length
        ? h('div', { class: 'scroll-box' }, transcript.el)
        : h('p', { class: 'empty' }, 'No speech was heard in this recording.'),
      h('div', { class: 'card-actions' },
        h('a', { class: 'button small', href: `#history/${answer.session_id}` }, 'Open in History'),
        h('button', { type: 'button', class: 'button small ghost', onclick: () => toggle.focus() },
          'Record another')));
  }

  function errorCard(message, retry = null) {
    const actions = [];
    if (retry?.sessionId) {
      actions.push(h('a', { class: 'button small', href: `#history/${retry.sessionId}` }, 'Open in History'));
    } else if (retry) {
      actions.push(h('button', {
        type: 'button', class: 'button small primary',
        onclick: () => send(retry.blob, retry.filename, retry.seconds, retry.chosen),
      }, icon('retry'), 'Send again'));
      actions.push(h('a', { class: 'button small', href: URL.createObjectURL(retry.blob), download: retry.filename },
        icon('download'), 'Save the recording'));
    }
    return h('div', { class: 'card notice notice-error', role: 'alert' },
      h('p', {}, message),
      retry?.sessionId ? h('p', { class: 'small' }, 'The recording is kept in History, where you can retry or delete it.') : null,
      actions.length ? h('div', { class: 'notice-actions' }, actions) : null);
  }

  setState('idle');
}
