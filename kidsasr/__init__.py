"""kidsasr: Korean children's broadcast speech recognition and subtitles."""

__version__ = "0.1.0"
