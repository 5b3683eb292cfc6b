"""How the web pages write sizes and dates."""

from giftcloud_api.web.views import dicom_date, human_size


def test_sizes_in_decimal_units() -> None:
    assert human_size(0) == "0 bytes"
    assert human_size(999) == "999 bytes"
    assert human_size(1000) == "1.0 KB"
    assert human_size(57_400) == "57.4 KB"
    assert human_size(1_500_000) == "1.5 MB"
    assert human_size(2 * 10**9) == "2.0 GB"
    assert human_size(3 * 10**12) == "3.0 TB"
    assert human_size(10**16) == "10000.0 TB"


def test_dicom_dates_read_as_dates() -> None:
    assert dicom_date("20240131") == "2024-01-31"
    assert dicom_date("") == ""
    assert dicom_date("2024") == "2024"  # not a full date: as it came
