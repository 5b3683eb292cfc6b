"""STOW-RS (PS3.18 §10.5): instances in a multipart/related body, streamed into an upload."""
