"""The settings of config.Settings by what they are about, for docs/configuration.md.

tools/config_doc.py writes that page from these groups and the fields' descriptions, and
tests/fast/test_configuration_doc.py fails when the two differ. A new setting goes into one group; a
tuning knob (a trade measured on some hardware, safe to leave alone) also into TUNING_KNOBS.
"""

from __future__ import annotations

SETTING_GROUPS: dict[str, tuple[str, ...]] = {
    "Server": (
        "host",
        "port",
        "api_key",
        "insecure_no_auth",
        "allowed_hosts",
        "allowed_origins",
        "max_upload_bytes",
        "max_waiting_decodes",
        "client_timeout_seconds",
        "keep_alive_seconds",
        "max_connections",
        "request_head_timeout_seconds",
        "max_connections_per_client",
        "login_free_failures",
        "login_max_wait_seconds",
        "login_forget_seconds",
    ),
    "Storage and queue": (
        "data_dir",
        "low_space_bytes",
        "index_url",
        "queue_backend",
        "redis_url",
        "lease_seconds",
        "queue_poll_seconds",
        "workers",
    ),
    "Decoding": (
        "model",
        "live_model",
        "models",
        "max_loaded_models",
        "device",
        "compute_type",
        "batch_size",
        "beam_size",
        "word_timestamps",
        "vad_filter",
        "vad_threshold",
        "vad_min_silence_ms",
        "vad_speech_pad_ms",
        "window_seconds",
    ),
    "CPU": (
        "cpu_threads",
        "cpu_decoders",
        "file_lanes",
        "lane_beam_size",
        "lane_context_tokens",
        "max_concurrent_decodes",
        "clip_batch",
    ),
    "Speakers": ("speakers", "speaker_merge_threshold", "speaker_voice_match_threshold"),
}
TUNING_KNOBS = frozenset(
    {
        "max_waiting_decodes",
        "request_head_timeout_seconds",
        "login_free_failures",
        "login_max_wait_seconds",
        "login_forget_seconds",
        "client_timeout_seconds",
        "keep_alive_seconds",
        "max_connections",
        "lease_seconds",
        "queue_poll_seconds",
        "max_loaded_models",
        "batch_size",
        "beam_size",
        "vad_threshold",
        "vad_min_silence_ms",
        "vad_speech_pad_ms",
        "window_seconds",
        "cpu_threads",
        "cpu_decoders",
        "file_lanes",
        "lane_beam_size",
        "lane_context_tokens",
        "max_concurrent_decodes",
        "clip_batch",
        "speaker_merge_threshold",
        "speaker_voice_match_threshold",
    }
)
