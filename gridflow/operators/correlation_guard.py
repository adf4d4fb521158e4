"""Rolling correlation of log returns between an account's symbols, for the risk guard."""

from __future__ import annotations

import numpy as np

from gridflow.operators.indicators.pairs import CorrelationState


class CorrelationGuard:
    """Per-pair rolling Pearson correlation over candle-time groups (picklable).

    Closes are forward-filled across the account's symbols at each candle time; a pair is
    fed from the first time both have a close. :meth:`update` returns, for every candle
    time of the chunk, the correlation matrix as of the *previous* candle time (the
    information a decision resting during this candle may use). NaN where unknown.

    Parameters
    ----------
    n_symbols : int
    window : int
        Returns per window (e.g. 168 for 168 hours of 1h candles).
    """

    def __init__(self, n_symbols: int, window: int) -> None:
        self.n = n_symbols
        self.window = window
        self.last_close = np.full(n_symbols, np.nan)
        self.states: dict[tuple[int, int], CorrelationState] = {}
        self.current = np.full((n_symbols, n_symbols), np.nan)

    def update(self, group_idx: np.ndarray, sym: np.ndarray, close: np.ndarray) -> np.ndarray:
        """Correlations for ``G`` groups: float64 (G, S, S), as of the previous group.

        ``group_idx`` (N,) maps each candle (sorted by time, symbol) to its group 0..G-1.
        """
        G = int(group_idx[-1]) + 1 if len(group_idx) else 0
        C = np.full((G, self.n), np.nan)
        C[group_idx, sym] = close
        if G:  # forward fill per symbol, seeded by the last close of the previous call
            C = np.vstack([self.last_close[None, :], C])
            idx = np.where(np.isnan(C), 0, np.arange(G + 1)[:, None])
            np.maximum.accumulate(idx, axis=0, out=idx)
            C = np.take_along_axis(C, idx, axis=0)[1:]
            self.last_close = C[-1].copy()
        out = np.empty((G, self.n, self.n))
        out[0] = self.current
        after = np.full((G, self.n, self.n), np.nan)
        for a in range(self.n):
            for b in range(a + 1, self.n):
                ok = np.isfinite(C[:, a]) & np.isfinite(C[:, b])
                if not ok.any():
                    continue
                first = int(np.argmax(ok))
                st = self.states.setdefault((a, b), CorrelationState(self.window))
                vals = st.update_many(C[first:, a], C[first:, b])
                after[first:, a, b] = vals
                after[first:, b, a] = vals
                if first > 0:
                    after[:first, a, b] = after[:first, b, a] = self.current[a, b]
        for g in range(1, G):
            out[g] = after[g - 1]
        if G:
            self.current = after[G - 1]
        return out
