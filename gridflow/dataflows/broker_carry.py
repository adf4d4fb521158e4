"""Carrying out one begun intent on a gateway: the broker's per-intent rules, used by
the lanes of the flow's process and by a broker process's lanes alike
(:mod:`gridflow.dataflows.broker_procs`).

An intent comes with the status its write-ahead row had (``None``: written just now;
``"sending"``: a crash left it mid-flight, so the exchange is asked first by client id
and the intent sent only if it has no such order) and, for a replacement, its old
order's cancel row's status.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine

from gridflow.events import OrderIntent, OrderOutcome
from gridflow.exchange.gateway import OrderGateway
from gridflow.journal.broker_rows import BROKER_TERMINAL, broker_begin

__all__ = ["NOT_BEGUN", "Carrier", "merge", "sending"]

#: A replacement whose old order's cancel row was not begun with it (recovery).
NOT_BEGUN = "not-begun"


def sending(intent: OrderIntent) -> OrderOutcome:
    """The write-ahead outcome of ``intent``: status ``sending``, stamped now (ms UTC)."""
    return OrderOutcome(
        intent_id=intent.intent_id, client_order_id=intent.client_order_id,
        action=intent.action, account=intent.account, symbol=intent.symbol, tag=intent.tag,
        status="sending", ts_ms=time.time_ns() // 1_000_000)


def merge(pre: OrderOutcome | None, out: OrderOutcome) -> OrderOutcome:
    """``out`` with the attempts and faults of a recovery lookup ``pre`` added."""
    if pre is None:
        return out
    return out.model_copy(update={"attempts": pre.attempts + out.attempts,
                                  "faults": [*pre.faults, *out.faults],
                                  "error": out.error or pre.error})


class Carrier:
    """Sends begun intents (their outcomes, not journaled: the caller journals them).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The journal: a recovered replacement's cancel row is begun here (the only write).
    run_id : str
    """

    def __init__(self, engine: Engine, run_id: str) -> None:
        self.engine = engine
        self.run_id = run_id

    def carry(self, gw: OrderGateway, intent: OrderIntent, status: str | None,
              cancel_status: str | None) -> list[OrderOutcome]:
        """Send one begun intent (``status`` from its write-ahead; ``cancel_status``: its
        old order's cancel row's, :data:`NOT_BEGUN` when there is none); the outcomes in
        the order the exchange saw the requests. Never raises for ccxt errors."""
        done: list[OrderOutcome] = []
        pre = gw.recover(intent) if status == "sending" else None
        if pre is not None and pre.status != "sending":
            # resolved by the lookup, or "failed" (lookups failed: never send blind). A
            # cancel_first replacement found on the exchange was placed after its old
            # order's cancel, whose outcome the same crash may have lost: resolved now,
            # not left "sending". A cancel_after place found on the exchange still owes
            # its old order's cancel (sent now if it was not); one not placed, a skip.
            if intent.replaces is not None and (pre.status == "sent"
                                                or intent.cancel_after is not None):
                self._follow_up(gw, intent, pre.status, broker_begin(
                    self.engine, self.run_id, sending(gw.replaced_cancel(intent))), done)
            return [pre, *done] if intent.cancel_after is not None else [*done, pre]
        if intent.action == "cancel":
            out = gw.cancel(intent)
        elif intent.replaces is None:
            out = gw.place(intent)
        else:
            if cancel_status == NOT_BEGUN:  # a recovered replacement: begin it now
                cancel_status = broker_begin(self.engine, self.run_id,
                                             sending(gw.replaced_cancel(intent)))
            if intent.cancel_after is not None:
                out = merge(pre, gw.place(intent))
                self._follow_up(gw, intent, out.status, cancel_status, done)
                return [out, *done]
            cancel_status = self._step_cancel(gw, gw.replaced_cancel(intent), cancel_status,
                                              done)
            out = gw.after_cancel(intent, cancel_status)
        done.append(merge(pre, out))
        return done

    def _follow_up(self, gw: OrderGateway, intent: OrderIntent, place_status: str,
                   cancel_status: str | None, done: list[OrderOutcome]) -> None:
        """The old order's cancel of a replacement whose place is known (``cancel_after``:
        carried when the place was accepted, else skipped; ``cancel_first``: the cancel
        that came before the place, resolved), unless its row is already terminal."""
        if cancel_status in BROKER_TERMINAL:
            return
        if intent.cancel_after is not None and place_status not in ("sent", "duplicate"):
            done.append(gw.after_place(intent, place_status))
            return
        self._step_cancel(gw, gw.replaced_cancel(intent), cancel_status, done)

    @staticmethod
    def _step_cancel(gw: OrderGateway, cancel: OrderIntent, status: str | None,
                     done: list[OrderOutcome]) -> str:
        """The replaced order's cancel (its ``{cid}:cancel`` row begun with ``status``);
        returns its status (the stored one if it was done before)."""
        if status in BROKER_TERMINAL:
            return status
        pre = gw.recover(cancel) if status == "sending" else None
        out = pre if pre is not None and pre.status != "sending" else merge(pre, gw.cancel(cancel))
        done.append(out)
        return out.status
