"""Data: the embedded corpus, real layouts with their labels, and N-source mixtures."""
