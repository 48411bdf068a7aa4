"""tapescribe: a self-hosted speech-to-text server that keeps audio and transcripts until the user deletes them."""

__version__ = "0.1.0"
