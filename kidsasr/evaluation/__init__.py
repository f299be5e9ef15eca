"""Evaluation (`kidsasr eval`): metrics, inputs, transcription, scoring, reports, long-form subtitle scoring and
alignment boundary error."""
