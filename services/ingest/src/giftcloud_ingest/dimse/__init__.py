"""The DICOM node (PS3.7, PS3.8): C-ECHO and C-STORE SCP, routed to projects by AE title."""
