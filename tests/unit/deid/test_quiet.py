"""Silencing pydicom's warnings from many threads at once leaves no filter behind."""

import threading
import warnings

from giftcloud_dicom.quiet import quiet


def test_overlapping_quiet_blocks_in_threads_leave_the_filters_as_they_were() -> None:
    before = list(warnings.filters)
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(300):
            with quiet(), quiet():  # nested, as the engine's pixel cleaning is
                warnings.warn("odd value", UserWarning, stacklevel=1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert warnings.filters == before
