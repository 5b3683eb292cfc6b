"""DICOMweb (PS3.18): QIDO-RS parameters and SQL, results, negotiation, WADO-RS, rendering."""
