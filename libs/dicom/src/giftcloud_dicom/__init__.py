"""giftcloud's DICOM toolkit: a raw reader and writer of Part 10 files, UID rules, the
checks an arriving instance must pass, DICOM JSON of an instance, multipart/related.
pydicom only: no numpy, no codec, nothing of a service."""
