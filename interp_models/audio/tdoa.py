"""Time difference of arrival between two signals by GCC-PHAT.

Knapp and Carter, "The generalized correlation method for estimation of time delay",
IEEE Trans. ASSP 1976: the cross-power spectrum whitened to unit magnitude (the phase
transform), so the cross-correlation peaks sharply at the delay whatever the source's
spectrum. The peak is found to ``1 / upsample`` of a sample by zero-padding the inverse FFT.
Written here with numpy: a few lines, no library in the stack provides it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gcc_phat"]


def gcc_phat(a: np.ndarray, b: np.ndarray, max_lag: float, upsample: int = 32) -> float:
    """Delay of ``b`` relative to ``a`` in samples (positive: ``b`` arrives later).

    Parameters
    ----------
    a, b : 1-D signals of one source at two sensors.
    max_lag : the largest delay searched (samples), e.g. the array's aperture / c * rate.
    upsample : resolution of the search, ``1 / upsample`` samples.
    """
    n = len(a) + len(b)
    cross = np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n))
    cross /= np.abs(cross) + 1e-12
    cc = np.fft.irfft(cross, n * upsample)
    lags = int(np.ceil(max_lag * upsample))
    window = np.concatenate([cc[-lags:], cc[: lags + 1]])
    return float((np.argmax(window) - lags) / upsample)
