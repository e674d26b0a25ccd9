"""Activation recording and the seed posts' analyses (see docs/analysis.md, docs/recording-format.md)."""

from folkrnn_live.analysis.recorder import Recorder, RecorderStats
from folkrnn_live.analysis.recording import Recording, RecordingError, load_recording

__all__ = ["Recorder", "RecorderStats", "Recording", "RecordingError", "load_recording"]
