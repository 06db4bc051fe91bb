"""Jobs: an uploaded file, its analysis state, and its result and artifacts."""
