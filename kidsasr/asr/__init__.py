"""Recognition: model backends, voice activity, hallucination guards, long-form transcription, CTranslate2
export."""
