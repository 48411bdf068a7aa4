// The audio player beside an interactive transcript: the segment being heard is marked while it
// plays, and choosing a segment seeks there.

export function seek(audio, seconds) {
  const apply = () => {
    audio.currentTime = seconds;
  };
  // Before metadata has loaded, Chromium ignores a seek on some formats; wait for it.
  if (audio.readyState >= HTMLMediaElement.HAVE_METADATA) apply();
  else audio.addEventListener('loadedmetadata', apply, { once: true });
}

export function linkPlayer(audio, transcript) {
  const sync = () => transcript.highlight(audio.currentTime, { scroll: !audio.paused });
  audio.addEventListener('timeupdate', sync);
  audio.addEventListener('seeked', sync);
  return {
    play(seconds) {
      seek(audio, seconds);
      audio.play().catch(() => {
        // Autoplay refused or audio unplayable: the seek still happened, the person can press play.
      });
    },
    seek: (seconds) => seek(audio, seconds),
  };
}
