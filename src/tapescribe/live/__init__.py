"""Live audio: /ws/live streams and /transcribe-live chunks, from bytes on disk to a finished session."""
