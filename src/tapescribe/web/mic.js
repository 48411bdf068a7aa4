// The microphone, shared by the Record and Live tabs: permission, a MediaRecorder format the
// server can decode, the level meter and the elapsed-time clock.

import { formatClock } from './format.js';

const FORMATS = [
  ['audio/webm;codecs=opus', 'webm'],
  ['audio/webm', 'webm'],
  ['audio/ogg;codecs=opus', 'ogg'],
  ['audio/mp4', 'm4a'],
];

export function recordingFormat() {
  if (typeof MediaRecorder === 'undefined') return null;
  for (const [mimeType, extension] of FORMATS) {
    if (MediaRecorder.isTypeSupported(mimeType)) return { mimeType, extension };
  }
  return { mimeType: '', extension: 'webm' };
}

function problemMessage(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Microphone access was blocked. Allow the microphone for this site in the browser and try again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found. Connect one and try again.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The microphone is in use by another program or could not be started.';
    default:
      return `The microphone could not be opened${error && error.message ? `: ${error.message}` : '.'}`;
  }
}

/** Opens the microphone; throws an Error whose message can be shown as it is. */
export async function openMicrophone() {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    throw new Error('This browser only allows recording on a secure page: open tapescribe over https or at localhost.');
  }
  if (typeof MediaRecorder === 'undefined') {
    throw new Error('This browser cannot record audio (no MediaRecorder). Try a current Firefox, Chrome or Safari.');
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    throw new Error(problemMessage(error), { cause: error });
  }
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 2048;
  context.createMediaStreamSource(stream).connect(analyser);
  return {
    stream,
    analyser,
    close() { // safe to call more than once
      stream.getTracks().forEach((track) => track.stop());
      if (context.state !== 'closed') context.close().catch(() => {});
    },
  };
}

/** Animates a .meter element from the analyser's loudness; returns a function that stops it. */
export function startMeter(analyser, meter) {
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  let shown = 0;
  const draw = () => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const sample of samples) sum += sample * sample;
    const rms = Math.sqrt(sum / samples.length);
    // -60 dBFS (quiet room) .. 0 dBFS (full scale) mapped onto 0..1; falls back slowly like a VU meter
    const level = Math.min(1, Math.max(0, (20 * Math.log10(rms || 1e-9) + 60) / 60));
    shown = level > shown ? level : shown * 0.92 + level * 0.08;
    meter.style.setProperty('--level', shown.toFixed(3));
    frame = requestAnimationFrame(draw);
  };
  draw();
  meter.classList.add('is-active');
  return () => {
    cancelAnimationFrame(frame);
    meter.classList.remove('is-active');
    meter.style.setProperty('--level', '0');
  };
}

/** Shows elapsed time in `el` from now on; returns {stop(), seconds()}. */
export function startClock(el) {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const tick = () => {
    el.textContent = formatClock(seconds());
  };
  tick();
  const timer = setInterval(tick, 250);
  return { stop: () => clearInterval(timer), seconds };
}

export function recordingName(prefix, extension) {
  const stamp = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date());
  return `${prefix} ${stamp}.${extension}`;
}
