"""The machinery under :mod:`livekit_py.rtc.media_devices`; not imported by users.

* :mod:`.backend`: the audio backend protocol, the default ``sounddevice`` backend (loaded
  on first use, so importing livekit_py never needs it) and the installed-backend registry.
* :mod:`.capture`: the processing thread of a capture (10 ms frames, APM, reverse stream,
  delay hint).
* :mod:`.playback`: the per-track jitter buffer and the mixing of the output callback.
* :mod:`.threads`: running blocking stops off the event loop.

Threads and data flow
---------------------

* The backend calls the stream callbacks on its own audio threads.  They only copy the
  samples and hand them over (a lock-free queue put); they never wait for the event loop.
  The time a block was captured or reaches the speaker is taken from the capture's or
  player's clock (``time.monotonic`` unless ``MediaDevices(clock=...)`` says otherwise)
  and the callback's time information.
* Each ``InputCapture`` has one processing thread (:class:`.capture.CaptureProcessor`).
  It cuts the captured audio into 10 ms frames, runs them through the
  ``AudioProcessingModule`` (high-pass filter, echo canceller, noise suppressor, gain
  control), and passes the processed frames to the event loop with
  ``loop.call_soon_threadsafe``.  A task on the loop then gives them to
  ``AudioSource.capture_frame``.
* An ``OutputPlayer`` reads every added track through an ``AudioStream`` (one task per
  track) into a per-track :class:`.playback.JitterBuffer`.  The output callback mixes the
  buffers into the device block (:func:`.playback.mix`).  The very block that is played
  is also queued, as the echo canceller's reverse (far-end) stream, to the processing
  thread of every open capture of the same ``MediaDevices``, with the time it reaches the
  speaker.  Captured blocks carry the time they were captured; from both, the processing
  thread works out the delay hint for the APM.

The APM is used by the processing thread only, so the capture and reverse streams reach it
in the order the device delivered them, without any lock shared with the audio threads.
"""
