"""Audio decoding, model loading and transcription. Imports nothing from the rest of tapescribe but errors."""
