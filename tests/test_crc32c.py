from __future__ import annotations

import importlib.util

import google_crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tfrecord_lite.crc32c as crc_module
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


def test_fallback_order_and_warning(monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    import builtins

    real_import = builtins.__import__

    def no_fast_crc(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name in ("google_crc32c", "crcmod"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fast_crc)
    with caplog.at_level("WARNING"):
        name, fn = crc_module._pick_backend()
    assert name == "pure Python" and fn is crc32c_python
    assert "slower" in caplog.text

    def only_crcmod(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "google_crc32c":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", only_crcmod)
    name, fn = crc_module._pick_backend()
    # crcmod installed without a C compiler is pure Python: the picker passes it over.
    compiled = importlib.util.find_spec("crcmod._crcfunext") is not None
    assert name == ("crcmod (C)" if compiled else "pure Python")
    assert fn(b"123456789") == 0xE3069283
