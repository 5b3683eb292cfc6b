"""Analysis jobs: a hub's researcher runs an algorithm a site's admin approved (by the
digest of its code) over a cohort chosen by criteria, at each site, on its de-identified
archive; the output is held for the site's data steward, or released at once when it is an
aggregate whose every cell passes the site's k."""
