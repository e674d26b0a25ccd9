"""The seed posts' analyses of activation recordings (see docs/analysis.md; recordings: folkrnn_live.recording)."""

from folkrnn_live.recording.recorder import Recorder, RecorderStats
from folkrnn_live.recording.recording import Recording, RecordingError, load_recording

__all__ = ["Recorder", "RecorderStats", "Recording", "RecordingError", "load_recording"]
