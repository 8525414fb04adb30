"""Sessions: the transcript model, storage, titles and the bus. Imports nothing else of ours."""
