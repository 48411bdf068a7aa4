// The Live tab: the microphone as MediaRecorder webm/opus slices, streamed over the /ws/live
// WebSocket (protocol in the README). The server answers with `final` text (settled, appended) and
// `partial` text (may still change, shown grey and italic) as the person speaks. With Auto, the
// server first hears which language is spoken and says so (`language`: the model that captions it).
// When the stream ends, the whole recording is transcribed once more; its text replaces the captions.

import { h, replace, $ } from './dom.js';
import { emit, SESSIONS_CHANGED } from './bus.js';
import { openMicrophone, recordingFormat, startClock, startMeter } from './mic.js';
import { modelChoice } from './choice.js';
import { follow } from './events.js';
import { getSession } from './api.js';
import { languageName } from './languages.js';

const TIMESLICE_MS = 250;

function liveSocketUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/live`;
}

export function setupLive() {
  const toggle = $('#live-toggle');
  const label = toggle.querySelector('.record-label');
  const clockEl = $('#live-clock');
  const meter = $('#live-meter');
  const statusLine = $('#live-status');
  const captions = $('#live-captions');
  const footer = $('#live-footer');
  const choice = modelChoice({ speakers: true });
  $('#live-choice').append(choice.el);

  let run = null;
  let unfollow = null; // following the last stream's second pass

  toggle.addEventListener('click', () => {
    if (run?.state === 'recording') stop(run);
    else if (!run) start();
  });

  function setState(state) {
    toggle.dataset.state = state;
    label.textContent = state === 'recording' ? 'Stop live captions' : 'Start live captions';
    toggle.disabled = state === 'finishing' || state === 'starting';
    choice.disable(state !== 'idle');
  }

  async function start() {
    const format = recordingFormat();
    if (format && format.extension !== 'webm') {
      statusLine.textContent = 'Live captions need a browser that records WebM audio, such as Firefox or Chrome. Use the Record tab instead.';
      return;
    }
    unfollow?.();
    unfollow = null;
    run = { state: 'starting', sent: 0, sessionId: null, finals: [], partial: '', view: null, language: null };
    const mine = run;
    setState('starting');
    statusLine.textContent = 'Opening the microphone…';
    try {
      mine.mic = await openMicrophone();
    } catch (error) {
      run = null;
      setState('idle');
      statusLine.textContent = error.message;
      return;
    }
    statusLine.textContent = 'Connecting to the server…';
    mine.socket = new WebSocket(liveSocketUrl());
    const chosen = choice.value(); // the same fields as an upload's; Auto sends none
    mine.socket.addEventListener('open', () => {
      mine.socket.send(JSON.stringify({ type: 'start', format: 'webm', ...chosen }));
    });
    mine.socket.addEventListener('message', (event) => onMessage(mine, JSON.parse(event.data)));
    mine.socket.addEventListener('close', () => {
      if (mine.state !== 'done' && mine.state !== 'failed') {
        fail(mine, new Error('the connection to the server was lost'));
      }
    });
  }

  function record(mine) {
    mine.recorder = new MediaRecorder(mine.mic.stream, { mimeType: recordingFormat().mimeType });
    mine.recorder.addEventListener('dataavailable', (event) => {
      if (!event.data.size || mine.socket.readyState !== WebSocket.OPEN) return;
      mine.socket.send(event.data); // a WebSocket keeps the slices in order
      mine.sent += 1;
      showProgress(mine);
    });
    mine.recorder.addEventListener('stop', () => {
      mine.mic.close(); // only now: closing it earlier can keep the recorder from handing over its last slice
      if (mine.socket.readyState === WebSocket.OPEN) mine.socket.send(JSON.stringify({ type: 'stop' }));
    });
    mine.recorder.start(TIMESLICE_MS);
    mine.clock = startClock(clockEl);
    mine.stopMeter = startMeter(mine.mic.analyser, meter);
    mine.state = 'recording';
    setState('recording');
    replace(captions, h('p', { class: 'empty' }, 'Listening… the first words appear after the first pause.'));
    replace(footer);
    showProgress(mine);
  }

  function onMessage(mine, message) {
    if (mine.state === 'failed') return;
    switch (message.type) {
      case 'ready':
        record(mine);
        break;
      case 'session':
        mine.sessionId = message.session_id;
        emit(SESSIONS_CHANGED, { id: mine.sessionId });
        break;
      case 'language':
        mine.language = message;
        showProgress(mine);
        break;
      case 'final':
        mine.finals.push(message.text);
        showCaptions(mine);
        break;
      case 'partial':
        mine.partial = message.text;
        showCaptions(mine);
        break;
      case 'error':
        fail(mine, new Error(message.message));
        break;
      case 'done':
        mine.partial = '';
        showCaptions(mine);
        finish(mine, message);
        break;
      default:
        break;
    }
  }

  function stop(mine) {
    mine.state = 'finishing';
    setState('finishing');
    mine.clock.stop();
    mine.stopMeter();
    mine.recorder.stop(); // hands over the last slice, then 'stop' (which tells the server)
    showProgress(mine);
  }

  // Settled text is appended once; the one draft span after it is rewritten as the partial text
  // changes, so the captions do not flicker and the page keeps the elements it already has.
  function showCaptions(mine) {
    if (!mine.finals.length && !mine.partial) return;
    if (!mine.view) {
      mine.view = { text: h('p', { class: 'caption-text' }), draft: h('span', { class: 'caption draft' }), shown: 0 };
      mine.view.text.append(mine.view.draft);
      replace(captions, mine.view.text);
    }
    const { view } = mine;
    for (; view.shown < mine.finals.length; view.shown += 1) {
      view.draft.before(h('span', { class: 'caption final' }, mine.finals[view.shown]));
    }
    view.draft.textContent = mine.partial;
    view.draft.hidden = !mine.partial;
    captions.scrollTop = captions.scrollHeight;
  }

  // "Spanish · base": the language heard and the model captioning it (Auto only).
  function heard(mine) {
    const { language, model } = mine.language || {};
    return mine.language ? `${language ? languageName(language) : 'Language unknown'} · ${model}` : '';
  }

  function showProgress(mine) {
    if (mine.state === 'recording') {
      const chunks = `${mine.sent} ${mine.sent === 1 ? 'chunk' : 'chunks'} sent`;
      statusLine.textContent = ['Listening', heard(mine), chunks].filter(Boolean).join(' · ');
    } else if (mine.state === 'finishing') {
      statusLine.textContent = 'Stopping · settling the last words…';
    }
  }

  function finish(mine, done) {
    mine.state = 'done';
    run = null;
    setState('idle');
    clockEl.textContent = '0:00';
    // Nothing more will be heard, so the last words will not change any more.
    captions.querySelectorAll('.caption.draft').forEach((el) => el.classList.replace('draft', 'final'));
    if (mine.sessionId) {
      statusLine.textContent = 'Stopped. The recording and its captions are saved; the whole recording is now transcribed once more for the final text.';
      replace(footer, h('a', { class: 'button small', href: `#history/${mine.sessionId}` }, 'Open in History'));
      emit(SESSIONS_CHANGED, { id: mine.sessionId });
      if (done.status === 'queued') followSecondPass(mine);
    } else {
      statusLine.textContent = 'Stopped before any audio was recorded.';
    }
  }

  // The second pass replaces the draft: its text takes the captions' place once it is done, unless
  // another stream has started here since.
  function followSecondPass(mine) {
    const stop = follow(mine.sessionId, {
      end: (status) => {
        stop();
        if (unfollow === stop) unfollow = null;
        if (!run) showSecondPass(mine, status);
      },
    });
    unfollow = stop;
  }

  async function showSecondPass(mine, status) {
    if (status?.status !== 'done') {
      statusLine.textContent = `Stopped. Transcribing the whole recording once more ended in ${status?.status || 'an unknown state'}${status?.message ? `: ${status.message}` : ''}; the live captions are kept.`;
      return;
    }
    let session;
    try {
      session = await getSession(mine.sessionId);
    } catch (error) {
      statusLine.textContent = `Done, but the final text could not be read: ${error.message}`;
      return;
    }
    if (run) return;
    const text = session.transcription?.text || '';
    replace(captions, text ? h('p', { class: 'caption-text' }, h('span', { class: 'caption final' }, text))
      : h('p', { class: 'empty' }, 'No speech was found in the recording.'));
    const language = session.transcription?.language;
    const model = session.transcription?.model || session.model;
    const by = [language ? languageName(language) : '', model].filter(Boolean).join(' · ');
    statusLine.textContent = `Done. The whole recording was transcribed once more${by ? ` (${by})` : ''}; this is its final text.`;
    emit(SESSIONS_CHANGED, { id: mine.sessionId });
  }

  function fail(mine, error) {
    const wasRecording = mine.state === 'recording';
    mine.state = 'failed';
    if (wasRecording) {
      mine.clock.stop();
      mine.stopMeter();
      mine.recorder.stop();
    }
    mine.mic.close();
    if (mine.socket.readyState <= WebSocket.OPEN) mine.socket.close();
    run = null;
    setState('idle');
    statusLine.textContent = '';
    replace(footer, h('div', { class: 'notice notice-error', role: 'alert' },
      h('p', {}, `Live captions stopped: ${error.message}`),
      mine.sessionId ? h('p', { class: 'small' }, 'Everything heard so far is saved in History. ',
        h('a', { href: `#history/${mine.sessionId}` }, 'Open it')) : null));
  }

  setState('idle');
}
