"""The outside world as the sequencer sees it: the messenger's words for previews."""
