// The browser peer of tests/integration/test_browser.py, on livekit-client.
//
// driver.mjs calls the functions of window.lk (each returns JSON-able results) and
// relays what the page reports on its own (window.reportToDriver) to the test.
'use strict';

const LK = window.LivekitClient;
const report = (obj) => window.reportToDriver(obj);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let room = null;
const local = [];

async function waitFor(fn, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function remotePublication(identity, kind) {
  const participant = room.remoteParticipants.get(identity);
  if (!participant) return null;
  for (const pub of participant.trackPublications.values()) {
    if (pub.kind === kind && pub.track) return pub;
  }
  return null;
}

// The inbound-rtp report of a remote track, with the codec it names.
async function inbound(track) {
  const stats = await track.getRTCStatsReport();
  if (!stats) return null;
  let rtp = null;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp') rtp = s;
  });
  if (!rtp) return null;
  const codec = rtp.codecId ? stats.get(rtp.codecId) : undefined;
  return { ...rtp, codecMime: codec ? codec.mimeType : null };
}

// Mean colour of the middle half of each cell of a rows x cols grid over the image.
function gridColours(image, rows, cols) {
  const { width, height, data } = image;
  const out = [];
  for (let r = 0; r < rows; r++) {
    const row = [];
    for (let c = 0; c < cols; c++) {
      const x0 = Math.floor(((c + 0.25) * width) / cols);
      const x1 = Math.floor(((c + 0.75) * width) / cols);
      const y0 = Math.floor(((r + 0.25) * height) / rows);
      const y1 = Math.floor(((r + 0.75) * height) / rows);
      const sum = [0, 0, 0];
      let n = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const i = (y * width + x) * 4;
          sum[0] += data[i];
          sum[1] += data[i + 1];
          sum[2] += data[i + 2];
          n++;
        }
      }
      row.push(sum.map((v) => Math.round(v / Math.max(n, 1))));
    }
    out.push(row);
  }
  return out;
}

window.lk = {
  // Join, then publish the fake camera and microphone. opts: camera, microphone
  // (default true), width, height, fps, codec ('vp8'), simulcast (false). Returns what
  // was published, as the browser sees it.
  async connect(url, token, opts = {}) {
    room = new LK.Room({ adaptiveStream: false, dynacast: false });
    room.on(LK.RoomEvent.DataReceived, (payload, participant, kind, topic, encryption, identity) => {
      report({
        event: 'data',
        // The sender as a participant the page knows, and as the packet names it.
        from: participant ? participant.identity : null,
        identity: identity ?? null,
        topic: topic ?? null,
        reliable: kind === LK.DataPacket_Kind.RELIABLE,
        text: new TextDecoder().decode(payload),
      });
    });
    room.on(LK.RoomEvent.TrackSubscribed, (track, pub, participant) => {
      report({ event: 'track_subscribed', identity: participant.identity, kind: track.kind, mime: pub.mimeType ?? null });
    });
    room.on(LK.RoomEvent.ParticipantConnected, (participant) => {
      report({ event: 'participant_connected', identity: participant.identity });
    });
    room.on(LK.RoomEvent.Disconnected, (reason) => report({ event: 'disconnected', reason: reason ?? null }));
    await room.connect(url, token, { autoSubscribe: true });
    const camera = opts.camera ?? true;
    const microphone = opts.microphone ?? true;
    const tracks = camera || microphone
      ? await LK.createLocalTracks({
          // No echo cancellation, noise suppression or gain control: the fake
          // microphone's beep reaches the test as it is.
          audio: microphone ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : false,
          video: camera ? { resolution: { width: opts.width ?? 640, height: opts.height ?? 480, frameRate: opts.fps ?? 30 } } : false,
        })
      : [];
    const published = [];
    for (const track of tracks) {
      // One layer at the captured size: under CPU load Chromium then drops frames
      // rather than lowering the resolution.
      const options = track.kind === 'video'
        ? { simulcast: opts.simulcast ?? false, videoCodec: opts.codec ?? 'vp8', degradationPreference: 'maintain-resolution' }
        : {};
      const pub = await room.localParticipant.publishTrack(track, options);
      local.push(track);
      published.push({ kind: track.kind, sid: pub.trackSid, mime: pub.mimeType ?? null, settings: track.mediaStreamTrack.getSettings() });
    }
    return { identity: room.localParticipant.identity, published };
  },

  async disconnect() {
    if (room) await room.disconnect();
    for (const track of local.splice(0)) track.stop();
    room = null;
  },

  receiveCodecs() {
    return RTCRtpReceiver.getCapabilities('video').codecs.map((c) => c.mimeType);
  },

  async sendData(text, topic, reliable = true) {
    await room.localParticipant.publishData(new TextEncoder().encode(text), { reliable, topic });
  },

  // Watch a remote participant's video for `seconds` (after a second of warm-up):
  // the size and frame rate the page sees (requestVideoFrameCallback), the decoder's
  // count (getStats), and the mean colours of a rows x cols grid of the last frame.
  async measureVideo(identity, seconds, rows = 1, cols = 4) {
    const pub = await waitFor(() => remotePublication(identity, 'video'), 20000, `a video track of ${identity}`);
    const el = document.createElement('video');
    el.muted = true;
    el.autoplay = true;
    el.playsInline = true;
    document.getElementById('media').appendChild(el);
    pub.track.attach(el);
    try {
      await waitFor(() => el.videoWidth > 0, 20000, 'the first video frame');
      await sleep(1000);
      const before = await inbound(pub.track);
      const t0 = performance.now();
      const frames = [];
      await new Promise((resolve, reject) => {
        const end = t0 + seconds * 1000;
        const stall = setTimeout(() => reject(new Error('no video frame callback for 10 s')), seconds * 1000 + 10000);
        const onFrame = (now, meta) => {
          frames.push({ now, rtp: meta.rtpTimestamp, presented: meta.presentedFrames, width: meta.width, height: meta.height });
          if (now >= end) {
            clearTimeout(stall);
            resolve();
          } else {
            el.requestVideoFrameCallback(onFrame);
          }
        };
        el.requestVideoFrameCallback(onFrame);
      });
      const wall = (performance.now() - t0) / 1000;
      const after = await inbound(pub.track);
      const canvas = document.createElement('canvas');
      canvas.width = el.videoWidth;
      canvas.height = el.videoHeight;
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      ctx.drawImage(el, 0, 0);
      const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
      const rtps = [...new Set(frames.map((f) => f.rtp).filter((v) => v !== undefined))];
      const first = frames[0];
      const last = frames[frames.length - 1];
      const rtpSpan = rtps.length > 1 ? ((rtps[rtps.length - 1] - rtps[0]) >>> 0) / 90000 : 0;
      const deltas = rtps.slice(1).map((v, i) => (v - rtps[i]) >>> 0).sort((a, b) => a - b);
      const medianDelta = deltas.length ? deltas[Math.floor(deltas.length / 2)] : 0;
      return {
        mime: pub.mimeType ?? null,
        width: el.videoWidth,
        height: el.videoHeight,
        callbackSizes: [...new Set(frames.map((f) => `${f.width}x${f.height}`))],
        callbacks: frames.length,
        // From the RTP timestamps (90 kHz) of the frames shown: the sender's clock,
        // whatever the page's pace. Nominal: the median gap between two frames shown;
        // rtp: frames shown per second of the sender's clock.
        fpsNominal: medianDelta > 0 ? 90000 / medianDelta : null,
        fpsRtp: rtpSpan > 0 ? (rtps.length - 1) / rtpSpan : null,
        fpsPresented: last.now > first.now ? ((last.presented - first.presented) * 1000) / (last.now - first.now) : null,
        fpsDecoded: before && after ? (after.framesDecoded - before.framesDecoded) / wall : null,
        codec: after ? after.codecMime : null,
        decoder: after ? after.decoderImplementation ?? null : null,
        grid: gridColours(image, rows, cols),
      };
    } finally {
      pub.track.detach(el);
      el.remove();
    }
  },

  // Listen to a remote participant's audio through WebAudio for `seconds`: every
  // 100 ms, the level (dBFS) and the dominant frequency of an AnalyserNode's FFT.
  async measureAudio(identity, seconds) {
    const pub = await waitFor(() => remotePublication(identity, 'audio'), 20000, `an audio track of ${identity}`);
    const stream = new MediaStream([pub.track.mediaStreamTrack]);
    // Chromium routes remote WebRTC audio into WebAudio only while a media element
    // plays the stream; a muted one is enough.
    const el = new Audio();
    el.muted = true;
    el.srcObject = stream;
    await el.play().catch(() => {});
    const ctx = new AudioContext();
    await ctx.resume();
    try {
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 16384;
      analyser.smoothingTimeConstant = 0;
      ctx.createMediaStreamSource(stream).connect(analyser);
      const spectrum = new Float32Array(analyser.frequencyBinCount);
      const samples = new Float32Array(analyser.fftSize);
      const binHz = ctx.sampleRate / analyser.fftSize;
      await sleep(500);
      const peaks = [];
      const levels = [];
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        analyser.getFloatTimeDomainData(samples);
        let power = 0;
        for (const v of samples) power += v * v;
        levels.push(10 * Math.log10(Math.max(power / samples.length, 1e-12)));
        analyser.getFloatFrequencyData(spectrum);
        let k = 1;
        for (let i = 2; i < spectrum.length - 1; i++) if (spectrum[i] > spectrum[k]) k = i;
        // A parabola through the peak bin and its neighbours (in dB) places the peak
        // between bins.
        const [a, b, c] = [spectrum[k - 1], spectrum[k], spectrum[k + 1]];
        const denom = a - 2 * b + c;
        const offset = denom !== 0 && Number.isFinite(denom) ? (0.5 * (a - c)) / denom : 0;
        peaks.push((k + offset) * binHz);
        await sleep(100);
      }
      const after = await inbound(pub.track);
      return {
        mime: pub.mimeType ?? null,
        codec: after ? after.codecMime : null,
        sampleRate: ctx.sampleRate,
        contextTime: ctx.currentTime,
        binHz,
        peaks,
        levels,
      };
    } finally {
      await ctx.close();
      el.srcObject = null;
    }
  },
};
