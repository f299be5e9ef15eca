"""The synthetic stand-in corpus: generator, child-like voices, broadcast mix and the text bank."""
