"""Results: what was derived from a project's images (segmentations, structured reports...),
each with the instances it derives from; read per study."""
