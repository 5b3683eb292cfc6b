"""Flower at a site: the apps (FABs) its admin approved by digest, read by the site's gate
before any ClientApp runs, and the gate's decisions in the site's audit trail."""
