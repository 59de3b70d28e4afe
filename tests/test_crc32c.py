from __future__ import annotations

import google_crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tfrecord_lite.crc32c as crc_module
from tfrecord_lite.accelerators import detect
from tfrecord_lite.crc32c import crc32c, crc32c_python, mask, masked_crc32c


def test_known_answers() -> None:
    # RFC 3720 B.4 check value, and the masked CRC of b"foo" in TensorFlow's TFRecords.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c_python(b"123456789") == 0xE3069283
    assert masked_crc32c(b"foo") == 0xFEBE8A61
    assert crc32c(b"") == 0


def test_mask_formula() -> None:
    c = crc32c(b"foo")
    assert mask(c) == (((c >> 15) | (c << 17)) + 0xA282EAD8) % (1 << 32)


@given(st.binary(max_size=300))
def test_backends_agree(data: bytes) -> None:
    import crcmod.predefined

    crcmod_fn = crcmod.predefined.mkPredefinedCrcFun("crc-32c")
    assert crc32c_python(data) == google_crc32c.value(data) == crcmod_fn(data)


def test_crc_function_is_a_parameter() -> None:
    calls = []

    def spy(data: bytes) -> int:
        calls.append(data)
        return crc32c_python(data)

    assert masked_crc32c(b"foo", spy) == 0xFEBE8A61
    assert calls == [b"foo"]


@pytest.mark.parametrize("installed, backend", [
    ({"google_crc32c._crc32c", "crcmod._crcfunext"}, "google-crc32c"),
    ({"crcmod._crcfunext"}, "crcmod"),
    (set(), "python"),
], ids=["both", "crcmod only", "neither"])
def test_the_fastest_installed_backend_is_chosen(installed: set[str], backend: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    choice = detect(environ={}, found=installed.__contains__).crc32c
    assert choice.backend == backend
    with caplog.at_level("WARNING"):
        fn = crc_module.BACKENDS[backend]()
    assert fn(b"123456789") == 0xE3069283
    assert ("about 1000x slower" in caplog.text) == (backend == "python")
    assert choice.label.startswith({"google-crc32c": "google-crc32c (C)",
                                    "crcmod": "crcmod (C)", "python": "pure Python"}[backend])
