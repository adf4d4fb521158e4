"""Serve the app with nothing loaded from another host, so it works offline.

BokehJS, Panel's JS/CSS and the FAST template's bundle come from the server's own
``/static`` routes in Bokeh's ``server`` resource mode (pinned here: a stray
``BOKEH_RESOURCES=cdn`` would send them to a CDN). What Panel would still fetch from
elsewhere is the FAST design's web font (Open Sans from Google Fonts, linked twice:
by the design's resources and by the template's ``font_url``); it is dropped and the
pages use the browser's sans-serif. The login pages are our own templates
(:mod:`gridflow.control.app.security`) without Panel's CDN logo and favicon.
"""

from __future__ import annotations

import logging

from bokeh.settings import settings
from panel.template.base import BaseTemplate
from panel.theme.fast import Fast

log = logging.getLogger(__name__)


def use_local_assets() -> None:
    """Process-wide, before serving: Bokeh resources in ``server`` mode and the FAST
    design without its Google web font. Idempotent."""
    if settings.resources(default="server") != "server":
        log.info("app: BOKEH_RESOURCES=%s ignored, the server serves its own assets",
                 settings.resources(default="server"))
        settings.resources.set_value("server")
    if "font" in Fast._resources:
        Fast._resources = {k: v for k, v in Fast._resources.items() if k != "font"}


def without_web_fonts(template: BaseTemplate) -> BaseTemplate:
    """``template`` (a session's page) without a remote font link (FAST ``font_url``)."""
    if "font_url" in template.param:
        template.font_url = ""
    return template
