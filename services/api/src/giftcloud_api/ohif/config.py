"""OHIF's configuration for one viewer: a DICOMweb data source per project they may read,
each on this origin's ``/dicomweb/{project}`` (the browser sends the session's cookie with
every GET there: no token in the page), and the Content Security Policy of its page."""

from __future__ import annotations

import json
from typing import Any

from giftcloud_api.ohif.install import BASE

#: OHIF's DICOMweb data source, as giftcloud's DICOMweb answers: QIDO-RS with includefield,
#: no fuzzy matching, metadata per series (lazy), frames by WADO-RS, thumbnails rendered.
DATA_SOURCE: dict[str, Any] = {
    "qidoSupportsIncludeField": True,
    "imageRendering": "wadors",
    "thumbnailRendering": "wadors",
    "enableStudyLazyLoad": True,
    "supportsFuzzyMatching": False,
    "supportsWildcard": True,
    "staticWado": False,
    "singlepart": "bulkdata,video",
    "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
    "omitQuotationForMultipartRequest": True,
}


def data_source(project: str) -> dict[str, Any]:
    """The project's data source; its roots are filled in by the page from its own origin."""
    return {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": project,
        "configuration": {"friendlyName": project, "name": project, **DATA_SOURCE},
    }


def app_config(projects: list[str]) -> str:
    """``app-config.js``: ``window.config`` for a viewer who may read ``projects``."""
    config = {
        "routerBasename": BASE.rstrip("/"),
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": True,
        "maxNumberOfWebWorkers": 2,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "showErrorDetails": "production",
        "defaultDataSourceName": projects[0] if projects else "",
        "dataSources": [data_source(project) for project in projects],
    }
    # the roots are this page's origin: behind any proxy the browser's origin is right
    return (
        f"window.config = {json.dumps(config, indent=1)};\n"
        "for (const source of window.config.dataSources) {\n"
        "  const root = window.location.origin + '/dicomweb/' + source.sourceName;\n"
        "  Object.assign(source.configuration,"
        " {qidoRoot: root, wadoRoot: root, wadoUriRoot: root});\n"
        "}\n"
    )


def page_policy(script_hashes: tuple[str, ...]) -> str:
    """OHIF's page: its own scripts and the inline ones it was built with (by hash), its
    WebAssembly codecs, its workers (some made from blobs), images drawn from blobs, styles
    it sets inline; nothing from another origin. ``'unsafe-eval'``: a segmentation is
    decoded with ndarray, which compiles its accessors with ``new Function`` — a weaker
    rule than the pages' own, for OHIF's pages only."""
    hashes = " ".join(f"'{h}'" for h in script_hashes)
    return (
        f"default-src 'self'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval' {hashes};"
        " worker-src 'self' blob:; style-src 'self' 'unsafe-inline';"
        " img-src 'self' blob: data:; font-src 'self' data:; connect-src 'self' blob: data:;"
        " media-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'self';"
        " form-action 'self'"
    )
