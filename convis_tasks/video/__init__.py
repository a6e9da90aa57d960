"""The video pipeline: decoding the protocol's frames, encoding pair clips, the clip cache, the prefetch pool and the
synthetic demo set. Imports PyAV and decord inside the functions that decode."""
