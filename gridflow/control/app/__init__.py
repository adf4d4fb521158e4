"""The Panel control app.

``state`` and ``backtest`` are the param stores and ``params_form`` the Backtest page's
strategy form (no Panel import), ``auth`` the user list and the authorization check,
``charts`` the HoloViews charts, ``views`` and ``params_view`` the thin Panel views,
``app`` the template and the server, ``cli`` the command line.

Importing this package does not import Panel; :func:`create_app`, :func:`serve` and
:func:`main` load it on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "main", "serve"]


def __getattr__(name: str) -> Any:
    if name == "main":
        from gridflow.control.app import cli

        return cli.main
    if name in __all__:
        from gridflow.control.app import app

        return getattr(app, name)
    raise AttributeError(name)
