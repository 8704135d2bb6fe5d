"""Everything about files on disk: walking, metadata, decoding. No torch here."""
