"""Signal processing: echo cancellation, filters, gain control, noise suppression and
pixel conversion kernels; no I/O and no rooms."""
