"""giftcloud's Flower half.

A hub runs Flower's SuperLink; each site runs a SuperNode that dials out to it and this
package's gate beside it (in place of Flower's own SuperExec). The gate starts a ClientApp
only when the app's digest is on the site's allow-list, and wraps every reply in the site's
disclosure control (:mod:`giftcloud_flower.disclosure`), whatever the app.
"""

import os

# A hospital's machines do not report to Flower's servers: no telemetry, no update check
# (read by flwr when imported, so set before any module of this package imports it).
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
