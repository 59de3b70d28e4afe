"""Training with PyTorch from TFRecord shards, without TensorFlow (PyTorch 2.0 or later:
the ``torch`` extra). See docs/torch.md.

* :class:`TFRecordDataset`: an ``IterableDataset`` that reads every record exactly once
  per epoch across DataLoader workers and distributed ranks, shuffles by shard order and
  a buffer (``set_epoch``), checks CRCs, and reads plain, GZIP and ZLIB shards.
* :class:`IndexedTFRecordDataset`: a map-style ``Dataset`` (``len``, ``dataset[i]``) over
  the record indexes of plain shards.
* :func:`collate`: batches the samples of ``decode_images=True``.

``import tfrecord_lite`` never imports this package, and this package imports torch only
when one of these names is first used: its planning (``plan``) and sample (``samples``)
modules work without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .datasets import IndexedTFRecordDataset, TFRecordDataset, collate

_FROM_DATASETS = ("IndexedTFRecordDataset", "TFRecordDataset", "collate")


def __getattr__(name: str) -> Any:
    if name in _FROM_DATASETS:
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"tfrecord_lite.torch.{name} needs PyTorch, any release "
                              "from 2.0 on; from a clone: pip install '.[torch]'") from exc
        from . import datasets

        value = getattr(datasets, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IndexedTFRecordDataset", "TFRecordDataset", "collate"]
