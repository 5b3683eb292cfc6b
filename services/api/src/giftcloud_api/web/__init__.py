"""The web interface: server-rendered pages (Jinja) over the catalogue."""
