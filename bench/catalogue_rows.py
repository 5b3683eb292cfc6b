"""The catalogue's instance columns, in the order the benches write their rows."""

INSTANCE_COLUMNS = [
    "project",
    "sop_uid",
    "series_uid",
    "study_uid",
    "subject",
    "sop_class_uid",
    "number",
    "object_key",
    "metadata_key",
    "attributes",
    "size",
    "sha256",
    "transfer_syntax_uid",
    "archived_at",
]
