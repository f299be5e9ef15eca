"""Subtitles (`kidsasr subtitle`, `kidsasr check`): cues under a style profile with syntax-aware breaks (kiwipiepy),
frame-grid times, VTT/SRT/SAMI/TTML/txt writers, a separate break checker, the episode runner."""
