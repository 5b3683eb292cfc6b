"""A miniature of OHIF 3's build (its ``dist``), for the tests of its installation and of
api serving it without the real 200 MB."""

from __future__ import annotations

from pathlib import Path

PAGE = (
    '<!doctype html><html><head><script>console.time("x"),window.PUBLIC_URL="/"</script>'
    '<link rel="manifest" href="/manifest.json"><script src="/app-config.js"></script>'
    '<link href="/app.bundle.css" rel="stylesheet"><a href="//elsewhere.example/">x</a>'
    '</head><body><script defer src="/app.bundle.0f6159c501addfe9.js"></script></body></html>'
)


def miniature(folder: Path) -> Path:
    """The shape of OHIF 3's ``dist``: a page, a bundle and a worker with webpack's public
    path, a style sheet with a font, a manifest, its default configuration."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(PAGE)
    chunk = (
        'var x = 1;\n__webpack_require__.p = "/";\nimportScripts(__webpack_require__.p + "a.js");'
    )
    (folder / "app.bundle.0f6159c501addfe9.js").write_text(chunk)
    (folder / "compute.bundle.0fc3a3ee85296cf2.js").write_text(chunk)
    (folder / "app.bundle.css").write_text("@font-face{src:url(/a34f9d1faa5f3315.woff2)}")
    (folder / "manifest.json").write_text('{"icons": [{"src": "/assets/a.png"}]}')
    (folder / "app-config.js").write_text("window.config = {dataSources: ['a CDN']};")
    return folder
