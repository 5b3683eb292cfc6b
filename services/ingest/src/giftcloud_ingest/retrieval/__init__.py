"""Cohort retrieval from a PACS: C-FIND the studies each query names, C-MOVE each here."""
