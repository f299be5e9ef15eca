"""Subtitles (`kidsasr subtitle`): cues under a style profile, WebVTT/SRT writers, the episode runner."""
