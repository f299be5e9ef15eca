"""Constants shared by every stage."""

SAMPLE_RATE = 16000  # Hz: the corpus, every model and every clip kidsasr writes
DEFAULT_MODEL = "openai/whisper-base"  # the starting model, the zero-shot baseline and the default recogniser
WHISPER_WINDOW_SECONDS = 30.0  # a stock Whisper encoder's window
