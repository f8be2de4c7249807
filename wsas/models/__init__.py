"""The separator: the conditioned U-Net, its waveform wrapper, and the queries it is asked with."""
