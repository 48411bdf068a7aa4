// The Live tab: the microphone cut into chunks by MediaRecorder's timeslice, each POSTed to
// /transcribe-live in order, one request at a time. Each answer is the whole text so far; its
// segments marked final are settled, the others (shown grey and italic) may still change.

import { api } from './api.js';
import { h, replace, $ } from './dom.js';
import { emit, SESSIONS_CHANGED } from './bus.js';
import { openMicrophone, recordingFormat, startClock, startMeter } from './mic.js';

const TIMESLICE_MS = 2000;
const MAX_NETWORK_RETRIES = 6;

export function setupLive() {
  const toggle = $('#live-toggle');
  const label = toggle.querySelector('.record-label');
  const clockEl = $('#live-clock');
  const meter = $('#live-meter');
  const statusLine = $('#live-status');
  const captions = $('#live-captions');
  const footer = $('#live-footer');

  let run = null;

  toggle.addEventListener('click', () => {
    if (run?.state === 'recording') stop(run);
    else if (!run) start();
  });

  function setState(state) {
    toggle.dataset.state = state;
    label.textContent = state === 'recording' ? 'Stop live captions' : 'Start live captions';
    toggle.disabled = state === 'finishing';
  }

  async function start() {
    const format = recordingFormat();
    if (format && format.extension !== 'webm') {
      statusLine.textContent = 'Live captions need a browser that records WebM audio, such as Firefox or Chrome. Use the Record tab instead.';
      return;
    }
    run = { state: 'starting', queue: [], next: 0, sent: 0, sessionId: null, sending: false, stopped: false };
    const mine = run;
    statusLine.textContent = 'Opening the microphone…';
    try {
      mine.mic = await openMicrophone();
    } catch (error) {
      run = null;
      statusLine.textContent = error.message;
      return;
    }
    mine.recorder = new MediaRecorder(mine.mic.stream, { mimeType: format.mimeType });
    mine.recorder.addEventListener('dataavailable', (event) => {
      if (!event.data.size) return;
      mine.queue.push({ index: mine.next, blob: event.data });
      mine.next += 1;
      pump(mine);
    });
    mine.recorder.addEventListener('stop', () => {
      mine.mic.close(); // only now: closing it earlier can keep the recorder from handing over its last chunk
      mine.stopped = true;
      pump(mine);
    });
    mine.recorder.start(TIMESLICE_MS);
    mine.clock = startClock(clockEl);
    mine.stopMeter = startMeter(mine.mic.analyser, meter);
    mine.state = 'recording';
    setState('recording');
    replace(captions, h('p', { class: 'empty' }, 'Listening… the first words appear in a few seconds.'));
    replace(footer);
    showProgress(mine);
  }

  function stop(mine) {
    mine.state = 'finishing';
    setState('finishing');
    mine.clock.stop();
    mine.stopMeter();
    mine.recorder.stop(); // hands over the last chunk, then 'stop' (which closes the microphone)
    showProgress(mine);
  }

  async function pump(mine) {
    if (mine.sending || mine.state === 'failed') return;
    if (!mine.queue.length) {
      if (mine.stopped) finish(mine);
      return;
    }
    mine.sending = true;
    const chunk = mine.queue[0];
    const form = new FormData();
    form.append('audio', chunk.blob, `chunk_${chunk.index}.webm`);
    form.append('chunk_index', String(chunk.index));
    if (mine.sessionId) form.append('session_id', mine.sessionId);
    try {
      const answer = await sendWithRetries(form, mine);
      mine.sessionId = answer.session_id;
      mine.queue.shift();
      mine.sent += 1;
      if (mine.sent === 1) emit(SESSIONS_CHANGED, { id: mine.sessionId });
      showCaptions(answer.segments || []);
    } catch (error) {
      fail(mine, error);
      return;
    } finally {
      mine.sending = false;
    }
    showProgress(mine);
    pump(mine);
  }

  // Network failures are retried with the same chunk and index: the server answers a repeated
  // identical chunk as a duplicate, so nothing is counted twice.
  async function sendWithRetries(form, mine) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await api('/transcribe-live', { method: 'POST', form });
      } catch (error) {
        if (error.status !== 0 || attempt >= MAX_NETWORK_RETRIES) throw error;
        statusLine.textContent = 'The connection to the server was lost; trying again…';
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
        if (mine.state === 'failed') throw error;
      }
    }
  }

  function showCaptions(segments) {
    if (!segments.length) {
      replace(captions, h('p', { class: 'empty' }, 'Listening… no speech heard yet.'));
      return;
    }
    replace(captions, h('p', { class: 'caption-text' }, segments.map((segment) => h('span', {
      class: segment.final ? 'caption final' : 'caption draft',
    }, segment.text))));
    captions.scrollTop = captions.scrollHeight;
  }

  function showProgress(mine) {
    if (mine.state === 'failed') return;
    const waiting = mine.queue.length;
    const sent = `${mine.sent} ${mine.sent === 1 ? 'chunk' : 'chunks'} transcribed`;
    if (mine.state === 'recording') {
      statusLine.textContent = `Listening · ${sent}${waiting > 1 ? ` · ${waiting} waiting to be sent` : ''}`;
    } else if (mine.state === 'finishing') {
      statusLine.textContent = `Stopping · transcribing the last ${waiting || 1} ${waiting > 1 ? 'chunks' : 'chunk'}…`;
    }
  }

  function finish(mine) {
    mine.state = 'done';
    run = null;
    setState('idle');
    clockEl.textContent = '0:00';
    // Nothing more will be heard, so the last words will not change any more.
    captions.querySelectorAll('.caption.draft').forEach((el) => el.classList.replace('draft', 'final'));
    if (mine.sessionId) {
      statusLine.textContent = 'Stopped. The recording and its captions are saved.';
      replace(footer, h('a', { class: 'button small', href: `#history/${mine.sessionId}` }, 'Open in History'));
      emit(SESSIONS_CHANGED, { id: mine.sessionId });
    } else {
      statusLine.textContent = 'Stopped before any audio was recorded.';
    }
  }

  function fail(mine, error) {
    const wasRecording = mine.state === 'recording';
    mine.state = 'failed';
    if (wasRecording) {
      mine.clock.stop();
      mine.stopMeter();
      mine.recorder.stop();
      mine.mic.close();
    }
    run = null;
    setState('idle');
    statusLine.textContent = '';
    replace(footer, h('div', { class: 'notice notice-error', role: 'alert' },
      h('p', {}, `Live captions stopped: ${error.message}`),
      mine.sessionId ? h('p', { class: 'small' }, 'What was transcribed so far is saved in History. ',
        h('a', { href: `#history/${mine.sessionId}` }, 'Open it')) : null));
  }

  setState('idle');
}
